# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remediation planning (the open_ports role's controller library).

- :func:`normalize_rules` checks the role's ``open_ports_rules`` and returns them in one form;
  every error names the rule (by index) and the bad value.
- :func:`plan_from_report` reads a diagnose report (``report.json``) and splits its findings
  into rules the role can apply on hosts of the play and manual actions (security groups,
  routers, listeners, NAT, hosts outside the play), each with its summary and commands.
The management-connection guard the changers run on the host is in ``module_utils/fix/guard.py``.
"""

from __future__ import annotations

import re

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import (
    format_port_spec, parse_number, parse_port_spec,
)
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import REPORT_SCHEMA
from ansible_collections.netdiag.reachability.plugins.plugin_utils.data import need
from ansible_collections.netdiag.reachability.plugins.module_utils._common.addresses import address_or_network as _address_or_network

BACKENDS = ("firewalld", "ufw", "nftables", "iptables-nft", "iptables-legacy")
RAW_BACKENDS = ("nftables", "iptables-nft", "iptables-legacy")
BACKEND_PROTOCOLS = {"firewalld": ("tcp", "udp", "sctp", "dccp"), "ufw": ("tcp", "udp"),
                     "nftables": ("tcp", "udp", "sctp", "dccp"), "iptables-nft": ("tcp", "udp", "sctp", "dccp"),
                     "iptables-legacy": ("tcp", "udp", "sctp", "dccp")}
RULE_KEYS = ("host", "backend", "ports", "state", "zone", "zone_source", "source", "family", "table", "chain", "forward_to",
             "verify_from", "verify_address", "rich_rules")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
FIXABLE_CAUSES = ("host_firewall",)
FORWARD_CAUSES = ("path_block",)   # a managed router's forward rule: raw backends, with forward_to
CLOUD_CAUSE = "security_group"
CLOUD_LAYERS = {"aws": ("security_group", "network_acl"), "alicloud": ("security_group",)}   # applied by provider


# --------------------------------------------------------------------------- rules

def normalize_rule(rule, index=0, hosts=None):
    """One rule -> its normalised dict.  ``hosts``: inventory host names, to check ``host``/``verify_from``."""
    where = "open_ports_rules[%d]" % index
    if not isinstance(rule, dict):
        raise InputError("%s: a rule is a dict, got %r" % (where, rule))
    unknown = sorted(set(rule) - set(RULE_KEYS))
    if unknown:
        raise InputError("%s: unknown key%s %s (allowed: %s)" % (
            where, "s" if len(unknown) > 1 else "", ", ".join(repr(k) for k in unknown), ", ".join(RULE_KEYS)))
    backend = rule.get("backend")
    if backend not in BACKENDS:
        raise InputError("%s: invalid backend %r (expected one of %s)" % (where, backend, ", ".join(BACKENDS)))
    state = rule.get("state", "present")
    if state not in ("present", "absent"):
        raise InputError("%s: invalid state %r (expected present or absent)" % (where, state))
    if state == "absent" and backend in RAW_BACKENDS:
        raise InputError("%s: state absent is not supported for backend %s (only rules this collection added "
                         "can be removed, with netdiag.reachability.raw_rule)" % (where, backend))
    ports = rule.get("ports")
    if isinstance(ports, (str, int)) and not isinstance(ports, bool):
        raise InputError("%s: ports must be a list, got %r (write [%r])" % (where, ports, ports))
    if not isinstance(ports, list) or not ports:
        raise InputError("%s: ports must be a non-empty list of PORT[-PORT]/PROTOCOL, got %r" % (where, ports))
    specs = []
    for spec in ports:
        try:
            p = parse_port_spec(spec, default_protocol="tcp", protocols=BACKEND_PROTOCOLS[backend])
        except InputError as exc:
            raise InputError("%s: %s (backend %s)" % (where, exc, backend))
        text = format_port_spec(p["first"], p["last"], p["protocol"])
        if text not in specs:
            specs.append(text)
    out = {"host": rule.get("host"), "backend": backend, "ports": specs, "state": state, "zone": None, "zone_source": None,
           "source": None, "family": None, "table": None, "chain": None, "forward_to": None,
           "verify_from": rule.get("verify_from"), "verify_address": None, "rich_rules": []}
    zone = rule.get("zone")
    if zone is not None:
        if backend != "firewalld":
            raise InputError("%s: zone %r is only for backend firewalld (backend is %s)" % (where, zone, backend))
        if not isinstance(zone, str) or not _NAME_RE.match(zone):
            raise InputError("%s: invalid zone name %r" % (where, zone))
        out["zone"] = zone
    if rule.get("zone_source") is not None:
        if backend != "firewalld":
            raise InputError("%s: zone_source %r is only for backend firewalld (backend is %s; use source)" % (
                where, rule["zone_source"], backend))
        if out["zone"]:
            raise InputError("%s: give zone or zone_source, not both (zone %r, zone_source %r)" % (
                where, out["zone"], rule["zone_source"]))
        out["zone_source"] = _address_or_network(rule["zone_source"], "zone_source", where)
    if rule.get("source") is not None:
        if backend == "firewalld":
            raise InputError("%s: source %r is not supported for backend firewalld (open the port in the zone "
                             "the source is bound to, with zone, or let zone_source find that zone; for this source only, "
                             "give rich_rules)" % (where, rule["source"]))
        out["source"] = _address_or_network(rule["source"], "source", where)
    rich = rule.get("rich_rules")
    if rich:
        # added instead of the ports (which are then what the rules open: what verify_from probes); the module on the
        # host checks each with firewalld's own parser
        if backend != "firewalld":
            raise InputError("%s: rich_rules are only for backend firewalld (backend is %s)" % (where, backend))
        if not isinstance(rich, list) or not all(isinstance(r, str) and r.strip().startswith("rule") for r in rich):
            raise InputError("%s: rich_rules must be a list of firewalld rich rules (rule ... accept), got %r" % (where, rich))
        out["rich_rules"] = [r.strip() for i, r in enumerate(rich) if r.strip() not in [x.strip() for x in rich[:i]]]
    for key in ("family", "table", "chain"):
        value = rule.get(key)
        if value is None:
            continue
        if backend not in RAW_BACKENDS:
            raise InputError("%s: %s %r is only for nftables/iptables backends (backend is %s)" % (
                where, key, value, backend))
        if not isinstance(value, str) or not _NAME_RE.match(value):
            raise InputError("%s: invalid %s %r" % (where, key, value))
        out[key] = value
    if out["family"] is not None and out["family"] not in ("ip", "ip6", "inet"):
        raise InputError("%s: invalid family %r (expected ip, ip6 or inet)" % (where, out["family"]))
    if rule.get("forward_to") is not None:
        if backend not in RAW_BACKENDS:
            raise InputError("%s: forward_to %r is only for nftables/iptables backends (backend is %s)" % (
                where, rule["forward_to"], backend))
        out["forward_to"] = _address_or_network(rule["forward_to"], "forward_to", where)
        if "/" in out["forward_to"]:
            raise InputError("%s: invalid forward_to %r (expected one address)" % (where, rule["forward_to"]))
    if rule.get("verify_address") is not None:
        out["verify_address"] = _address_or_network(rule["verify_address"], "verify_address", where)
        if "/" in out["verify_address"]:
            raise InputError("%s: invalid verify_address %r (expected one address)" % (where, rule["verify_address"]))
    for key in ("host", "verify_from"):
        value = rule.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise InputError("%s: invalid %s %r" % (where, key, value))
        if hosts is not None and value not in hosts:
            raise InputError("%s: %s %r is not a host of the inventory" % (where, key, value))
    if out["verify_from"] and state == "absent":
        raise InputError("%s: verify_from is only for state present (a probe checks that the port opened)" % where)
    return out


def normalize_rules(rules, hosts=None):
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise InputError("open_ports_rules must be a list of rules, got %r" % (rules,))
    hosts = _names(hosts, "the inventory hosts") if hosts is not None else None
    return [normalize_rule(rule, i, hosts) for i, rule in enumerate(rules)]


def rules_for_host(rules, host, hosts=None):
    """The normalised rules that apply to ``host`` (rules without ``host`` apply to every host)."""
    return [r for r in normalize_rules(rules, hosts) if r["host"] in (None, host)]


# --------------------------------------------------------------------------- from a report

def _flow_name(flow):
    return "%s -> %s%s %s/%s" % (flow.get("source") or flow.get("source_address") or "?",
                                 flow.get("destination") or flow.get("address"),
                                 " (%s)" % flow.get("address") if flow.get("destination") else "",
                                 flow.get("port"), flow.get("protocol"))


def check_report(report, source="the report"):
    if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA:
        got = report.get("schema") if isinstance(report, dict) else type(report).__name__
        raise InputError("%s is not a netdiag.reachability diagnose report (schema %r, expected %r)"
                         % (source, got, REPORT_SCHEMA))
    if report.get("version") != 1:
        raise InputError("%s has report version %r; this role reads version 1" % (source, report.get("version")))
    if not isinstance(report.get("flows"), list):
        raise InputError("%s has no list of flows" % source)
    for i, flow in enumerate(report["flows"]):
        _check_flow(flow, "%s: flows[%d]" % (source, i))


def _need(value, types, where):
    """``value`` (at ``where``) is None or one of ``types`` (bool is not an int); else InputError naming both."""
    return need(value, types, where, optional=True)


def _check_flow(flow, where):
    """One flow of a report, as far as planning reads it."""
    if not isinstance(flow, dict):
        raise InputError("%s must be a dict, got %r" % (where, flow))
    for key in ("cause", "source", "destination", "address", "source_address"):
        _need(flow.get(key), (str,), "%s.%s" % (where, key))
    fix = _need(flow.get("fix") or None, (dict,), where + ".fix") or {}
    for i, command in enumerate(_need(fix.get("commands"), (list,), where + ".fix.commands") or []):
        _need(command, (dict,), "%s.fix.commands[%d]" % (where, i))
    spec = _need(fix.get("open_ports") or None, (dict,), where + ".fix.open_ports") or {}
    for key in ("host", "backend", "zone", "source", "family", "table", "chain"):
        _need(spec.get(key), (str,), "%s.fix.open_ports.%s" % (where, key))
    for key in ("ports", "rich_rules"):
        _need(spec.get(key), (list,), "%s.fix.open_ports.%s" % (where, key))
    for i, one in enumerate(_need(fix.get("cloud"), (list,), where + ".fix.cloud") or []):
        rule = _need(one.get("rule"), (dict,), "%s.fix.cloud[%d].rule" % (where, i)) if isinstance(one, dict) else None
        try:
            if rule and rule.get("rule_number"):
                parse_number(rule["rule_number"], "rule_number", 1, 32766)
        except InputError as exc:
            raise InputError("%s.fix.cloud[%d].rule: %s" % (where, i, exc))


def plan_from_report(report, play_hosts, inventory_hosts=None, verify=True, source="the report", limit=None, routers=False):
    """Split a report's findings into rules per host and manual actions.

    Returns ``{"rules": [RULE, ...], "hosts": [name, ...], "manual": [ACTION, ...], "ok": int}``
    where RULE is a normalised rule (with ``host``) and ACTION is ``{flow, cause, host, summary,
    commands, why}``.  ``limit``: ``{"pattern": TEXT, "hosts": [name, ...]}`` when the run is limited
    (``--limit``); a fix on a host the limit leaves out is listed with that reason.  ``routers``: plan the
    forward-path fixes of managed routers (nftables/iptables, with ``forward_to``); else they are manual.
    """
    check_report(report, source)
    play_hosts = _names(play_hosts, "play_hosts")
    if limit:
        if not isinstance(limit, dict) or not isinstance(limit.get("pattern"), str):
            raise InputError("limit must be a dict {pattern, hosts}, got %r" % (limit,))
        play_hosts = [h for h in play_hosts if h in _names(limit.get("hosts"), "limit.hosts")]
    inventory_hosts = _names(inventory_hosts, "inventory_hosts") or play_hosts
    merged = {}
    manual = []
    cloud = []
    ok = 0
    for flow in report["flows"]:
        cause = flow.get("cause")
        if cause == "ok":
            ok += 1
            continue
        fix = flow.get("fix") or {}
        spec = fix.get("open_ports") if isinstance(fix, dict) else None
        if cause == CLOUD_CAUSE and isinstance(fix, dict) and fix.get("cloud"):
            _plan_cloud(flow, fix, play_hosts, limit, cloud, manual)
            continue
        why = None
        if not fix:
            why = "the report proposes no fix (%s)" % cause
        elif fix.get("manual") or not spec:
            why = "not a host firewall change (%s)" % cause
        elif cause in FORWARD_CAUSES and not routers:
            why = "the change is on %s, in the forward path (%s): routers are changed by hand unless " \
                  "open_ports_fix_routers is true" % (spec.get("host"), cause)
        elif cause in FORWARD_CAUSES and spec.get("backend") not in RAW_BACKENDS:
            why = "the change is on %s, in the forward path (%s): only nftables/iptables forward rules are applied" % (
                spec.get("host"), cause)
        elif cause not in FIXABLE_CAUSES + FORWARD_CAUSES:
            why = "the change is on %s (%s): changed by hand" % (spec.get("host"), cause)
        elif limit and spec.get("host") not in limit["hosts"]:
            why = "%s is outside --limit %s" % (spec.get("host"), limit["pattern"])
        elif spec.get("host") not in play_hosts:
            why = "%s is not a host of this play" % spec.get("host")
        elif spec.get("backend") not in BACKENDS:
            why = "backend %r cannot be changed by this role" % spec.get("backend")
        if why:
            manual.append({"flow": _flow_name(flow), "cause": cause, "host": (spec or {}).get("host") or flow.get("destination"),
                           "summary": fix.get("summary") if fix else None,
                           "commands": [c.get("command") for c in fix.get("commands") or []] if fix else [],
                           "why": why})
            continue
        rule = {"host": spec["host"], "backend": spec["backend"], "ports": list(spec.get("ports") or [])}
        if spec["backend"] == "firewalld" and spec.get("zone"):
            rule["zone"] = spec["zone"]
            if spec.get("rich_rules"):
                rule["rich_rules"] = list(spec["rich_rules"])   # this source only (the zone is ipset-bound)
        elif spec["backend"] == "firewalld" and flow.get("source_address"):
            rule["zone_source"] = flow["source_address"]   # the zone firewalld sends this source to
        if spec["backend"] == "ufw" and spec.get("source"):
            rule["source"] = spec["source"]
        if spec["backend"] in RAW_BACKENDS:
            for key in ("family", "table", "chain"):
                if spec.get(key):
                    rule[key] = spec[key]
            if cause in FORWARD_CAUSES:
                rule["forward_to"] = flow.get("address")
        if verify and flow.get("source") in inventory_hosts:
            rule["verify_from"] = flow["source"]
            rule["verify_address"] = flow.get("address")
        key = tuple((k, rule.get(k)) for k in ("host", "backend", "zone", "zone_source", "source", "family", "table", "chain",
                                               "forward_to", "verify_from", "verify_address")) + (tuple(rule.get("rich_rules") or ()),)
        if key in merged:
            merged[key]["ports"] += [p for p in rule["ports"] if p not in merged[key]["ports"]]
        else:
            merged[key] = rule
    rules = normalize_rules(list(merged.values()), inventory_hosts)
    hosts = []
    for r in rules + cloud:
        if r["host"] not in hosts:
            hosts.append(r["host"])
    return {"rules": rules, "cloud": cloud, "hosts": hosts, "manual": manual, "ok": ok}


def _names(value, what):
    """A list of host names (None: none); else InputError naming ``what``."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InputError("%s must be a list of host names, got %r" % (what, value))
    return list(value)


def _cloud_action(flow, fix, why):
    return {"flow": _flow_name(flow), "cause": flow.get("cause"), "host": flow.get("destination"),
            "summary": fix.get("summary"), "commands": [c.get("command") for c in fix.get("commands") or []], "why": why}


def _plan_cloud(flow, fix, play_hosts, limit, cloud, manual):
    """The report's cloud fixes of one flow: AWS security-group rules and network ACL entries, and Alibaba Cloud
    security-group rules (with the priority the fix chose), become security_group_rule / network_acl_entry arguments
    (applied on the controller, for the flow's destination host); the rest stays manual, saying why (an Alibaba
    Drop rule at priority 1, which no Accept rule can beat, comes with no api and stays manual with its note)."""
    host = flow.get("destination")
    for one in fix["cloud"]:
        if not isinstance(one, dict):
            continue
        rule = one.get("rule") or {}
        why = None
        if one.get("provider") not in CLOUD_LAYERS:
            why = "%s security groups are changed by hand (only AWS and Alibaba Cloud are applied)" % one.get("provider")
        elif one.get("layer") not in CLOUD_LAYERS[one["provider"]]:
            why = "%s %s entries are changed by hand" % (
                {"aws": "AWS"}.get(one["provider"], one["provider"]), str(one.get("layer") or "?").replace("_", " "))
        elif not one.get("target") or not one.get("api") or not (rule.get("source") or rule.get("destination")):
            why = one.get("note") or "the report gives no rule to add"
        elif limit and host not in limit["hosts"]:
            why = "%s is outside --limit %s" % (host, limit["pattern"])
        elif host not in play_hosts:
            why = "%s is not a host of this play" % host
        if why:
            entry = _cloud_action(flow, fix, why)
            if one.get("command"):
                entry["commands"] = [one["command"]]
            manual.append(entry)
            continue
        proto = str(rule.get("protocol") or flow.get("protocol")).lower()
        action = {"host": host, "provider": one["provider"], "kind": one["layer"], "group_id": None, "acl_id": None,
                  "egress": one.get("direction") == "egress", "before": None,
                  "protocol": "icmpv6" if proto in ("ipv6-icmp", "icmpv6") else proto,
                  "cidr": rule.get("source") or rule.get("destination"),
                  "port": None, "icmp_type": None, "flow": _flow_name(flow)}
        if one["layer"] == "security_group":
            action["group_id"] = one["target"]
            if one["provider"] == "alicloud":
                action["priority"] = rule.get("priority")   # before the Drop rule that decides, across the groups
        else:
            # the number the report chose is the highest free one below the deny that decides: keep below it
            action["acl_id"] = one["target"]
            action["before"] = int(rule["rule_number"]) + 1 if rule.get("rule_number") else 32767
        if action["protocol"] in ("tcp", "udp"):
            lo, hi = rule.get("from_port"), rule.get("to_port")
            action["port"] = str(lo) if lo == hi else "%s-%s" % (lo, hi)
        elif action["protocol"] in ("icmp", "icmpv6"):
            action["icmp_type"] = rule.get("from_port")
        else:
            manual.append(_cloud_action(flow, fix, "protocol %s is changed by hand" % proto))
            continue
        if action not in cloud:
            cloud.append(action)


# --------------------------------------------------------------------------- one run of the remediate playbook

def _limit(pattern, hosts):
    if not pattern:
        return None
    if isinstance(pattern, list):
        pattern = ",".join(str(p) for p in pattern)
    return {"pattern": str(pattern), "hosts": _names(hosts, "the hosts of --limit")}


def plan_run(report=None, rules=None, inventory_hosts=(), hosts=None, limit_pattern=None, limit_hosts=None,
             verify=True, source="the report", routers=False):
    """What one run of the remediate playbook changes: the report's fixes and ``rules`` (``open_ports_rules``)
    on the hosts it may change.

    ``hosts`` is ``open_ports_hosts`` (empty: every inventory host); ``limit_pattern``/``limit_hosts`` are
    ``ansible_limit`` and the hosts it leaves (``--limit``): a fix or rule on a host outside them is listed
    as a manual action that says so.  A rule without ``host`` goes to every host of ``open_ports_hosts``
    (narrowed by the limit), or of the limit; with neither it is refused (it would change every inventory
    host).  Returns the :func:`plan_from_report` dict plus ``nothing`` (a sentence when nothing is to be
    changed, else ``None``).
    """
    inventory = _names(inventory_hosts or None, "the inventory hosts")
    allowed = _names(hosts or None, "open_ports_hosts") or inventory
    for name in allowed:
        if name not in inventory:
            raise InputError("open_ports_hosts: %r is not a host of the inventory" % (name,))
    limit = _limit(limit_pattern, limit_hosts)
    if report is None and not rules:
        raise InputError("nothing to do: give open_ports_from_report (the path of a diagnose report.json) "
                         "or open_ports_rules (a list of rules)")
    if report is not None:
        plan = plan_from_report(report, allowed, inventory, verify, source, limit, routers)
    else:
        plan = {"rules": [], "cloud": [], "hosts": [], "manual": [], "ok": 0}
    targets = [h for h in allowed if not limit or h in limit["hosts"]]
    given = normalize_rules(rules, inventory)
    for i, rule in enumerate(given):
        where = "open_ports_rules[%d]" % i
        if rule["host"] is None:
            if not hosts and not limit:
                raise InputError("%s has no host: name the host (host: NAME), or say which hosts get it with "
                                 "open_ports_hosts or --limit (without them it would change every inventory host)" % where)
            wanted = targets
        elif rule["host"] in targets:
            wanted = [rule["host"]]
        else:
            plan["manual"].append({
                "flow": where, "cause": None, "host": rule["host"],
                "summary": "%s %s %s" % (rule["backend"], rule["state"], ", ".join(rule["ports"])), "commands": [],
                "why": ("%s is outside --limit %s" % (rule["host"], limit["pattern"]) if limit and rule["host"] not in limit["hosts"]
                        else "%s is not in open_ports_hosts" % rule["host"])})
            continue
        for name in wanted:
            plan["rules"].append(dict(rule, host=name))
            if name not in plan["hosts"]:
                plan["hosts"].append(name)
    plan["nothing"] = None
    if not plan["hosts"]:
        what = "the report" if report is not None else "open_ports_rules"
        if limit:
            elsewhere = sorted({m["host"] for m in plan["manual"] if m.get("host") and "outside --limit" in (m.get("why") or "")})
            plan["nothing"] = "nothing to change: --limit %s leaves no host with a change from %s%s" % (
                limit["pattern"], what, " (its changes are on %s)" % ", ".join(elsewhere) if elsewhere else "")
        else:
            plan["nothing"] = "nothing to change: %s has no change on the hosts this run may change" % what
    return plan
