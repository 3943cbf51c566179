# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remediation planning and the management-connection guard (the open_ports role's library).

- :func:`normalize_rules` checks the role's ``open_ports_rules`` and returns them in one form;
  every error names the rule (by index) and the bad value.
- :func:`plan_from_report` reads a diagnose report (``report.json``) and splits its findings
  into rules the role can apply on hosts of the play and manual actions (security groups,
  routers, listeners, NAT, hosts outside the play), each with its summary and commands.
- The guard: :func:`management_from_ssh_connection` finds the management connection
  (controller address, host address, ssh port) from ``SSH_CONNECTION``;
  :func:`firewalld_guard` and :func:`ufw_guard` compare what the firewall does with a new
  management connection before and after a change, and raise :class:`WouldCutManagement`
  when the change would stop accepting it.  (The raw nftables/iptables guard evaluates the rule
  model itself, see ``raw_rule.py``.)
"""

from __future__ import annotations

import copy
import ipaddress
import re

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import format_port_spec, parse_port_spec
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld.zones import zone_answer

REPORT_SCHEMA = "netdiag.reachability/report"
BACKENDS = ("firewalld", "ufw", "nftables", "iptables-nft", "iptables-legacy")
RAW_BACKENDS = ("nftables", "iptables-nft", "iptables-legacy")
BACKEND_PROTOCOLS = {"firewalld": ("tcp", "udp", "sctp", "dccp"), "ufw": ("tcp", "udp"),
                     "nftables": ("tcp", "udp", "sctp", "dccp"), "iptables-nft": ("tcp", "udp", "sctp", "dccp"),
                     "iptables-legacy": ("tcp", "udp", "sctp", "dccp")}
RULE_KEYS = ("host", "backend", "ports", "state", "zone", "source", "family", "table", "chain",
             "verify_from", "verify_address")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
FIXABLE_CAUSES = ("host_firewall",)


class WouldCutManagement(NetdiagError):
    """A change would stop the host from accepting new management (ssh) connections."""


# --------------------------------------------------------------------------- rules

def _address_or_network(value, what, where):
    try:
        return str(ipaddress.ip_network(str(value).strip(), strict=False)) if "/" in str(value) \
            else str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise InputError("%s: invalid %s %r (expected an IP address or network)" % (where, what, value))


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
    out = {"host": rule.get("host"), "backend": backend, "ports": specs, "state": state, "zone": None,
           "source": None, "family": None, "table": None, "chain": None,
           "verify_from": rule.get("verify_from"), "verify_address": None}
    zone = rule.get("zone")
    if zone is not None:
        if backend != "firewalld":
            raise InputError("%s: zone %r is only for backend firewalld (backend is %s)" % (where, zone, backend))
        if not isinstance(zone, str) or not _NAME_RE.match(zone):
            raise InputError("%s: invalid zone name %r" % (where, zone))
        out["zone"] = zone
    if rule.get("source") is not None:
        if backend == "firewalld":
            raise InputError("%s: source %r is not supported for backend firewalld (open the port in the zone "
                             "the source is bound to, with zone)" % (where, rule["source"]))
        out["source"] = _address_or_network(rule["source"], "source", where)
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
    return [normalize_rule(rule, i, hosts) for i, rule in enumerate(rules)]


def rules_for_host(rules, host, hosts=None):
    """The normalised rules that apply to ``host`` (rules without ``host`` apply to every host)."""
    return [r for r in normalize_rules(rules, hosts) if r["host"] in (None, host)]


# --------------------------------------------------------------------------- from a report

def _flow_name(flow):
    return "%s -> %s%s %s/%s" % (flow.get("source") or flow.get("source_address") or "?",
                                 flow.get("destination") or flow.get("address"),
                                 " (%s)" % flow["address"] if flow.get("destination") else "",
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


def plan_from_report(report, play_hosts, inventory_hosts=None, verify=True, source="the report"):
    """Split a report's findings into rules per host and manual actions.

    Returns ``{"rules": [RULE, ...], "hosts": [name, ...], "manual": [ACTION, ...], "ok": int}``
    where RULE is a normalised rule (with ``host``) and ACTION is ``{flow, cause, host, summary,
    commands, why}``.
    """
    check_report(report, source)
    play_hosts = list(play_hosts or [])
    inventory_hosts = list(inventory_hosts or play_hosts)
    merged = {}
    manual = []
    ok = 0
    for flow in report["flows"]:
        cause = flow.get("cause")
        if cause == "ok":
            ok += 1
            continue
        fix = flow.get("fix") or {}
        spec = fix.get("open_ports") if isinstance(fix, dict) else None
        why = None
        if not fix:
            why = "the report proposes no fix (%s)" % cause
        elif fix.get("manual") or not spec:
            why = "not a host firewall change (%s)" % cause
        elif cause not in FIXABLE_CAUSES:
            why = "the change is on %s, in the forward path (%s): routers are changed by hand" % (spec.get("host"), cause)
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
        if spec["backend"] == "ufw" and spec.get("source"):
            rule["source"] = spec["source"]
        if spec["backend"] in RAW_BACKENDS:
            for key in ("family", "table", "chain"):
                if spec.get(key):
                    rule[key] = spec[key]
        if verify and flow.get("source") in inventory_hosts:
            rule["verify_from"] = flow["source"]
            rule["verify_address"] = flow.get("address")
        key = tuple((k, rule.get(k)) for k in ("host", "backend", "zone", "source", "family", "table", "chain",
                                               "verify_from", "verify_address"))
        if key in merged:
            merged[key]["ports"] += [p for p in rule["ports"] if p not in merged[key]["ports"]]
        else:
            merged[key] = rule
    rules = normalize_rules(list(merged.values()), inventory_hosts)
    hosts = []
    for r in rules:
        if r["host"] not in hosts:
            hosts.append(r["host"])
    return {"rules": rules, "hosts": hosts, "manual": manual, "ok": ok}


# --------------------------------------------------------------------------- the management connection

def management_from_ssh_connection(text, port=None):
    """``SSH_CONNECTION`` ("client cport server sport") -> {source, address, port}; None when empty."""
    parts = str(text or "").split()
    if len(parts) != 4:
        return None
    try:
        ipaddress.ip_address(parts[0])
        ipaddress.ip_address(parts[2])
    except ValueError:
        return None
    return {"source": parts[0], "address": parts[2], "port": int(port or parts[3])}


def normalize_management(mgmt):
    if not isinstance(mgmt, dict) or not mgmt.get("source"):
        raise InputError("the management connection is unknown (%r): give its source address and ssh port" % (mgmt,))
    source = _address_or_network(mgmt["source"], "management source", "management")
    address = _address_or_network(mgmt["address"], "management address", "management") if mgmt.get("address") else None
    try:
        port = int(mgmt.get("port") or 22)
    except (TypeError, ValueError):
        raise InputError("management: invalid port %r" % (mgmt.get("port"),))
    if not 1 <= port <= 65535:
        raise InputError("management: invalid port %r" % (mgmt.get("port"),))
    return {"source": source, "address": address, "port": port}


# the ``management`` option of the modules that change a firewall (documented in the
# netdiag.reachability.management doc fragment)
MANAGEMENT_ARG_SPEC = dict(type="dict", options=dict(
    source=dict(type="str", required=True),
    address=dict(type="str"),
    port=dict(type="int", default=22),
))


def module_management(param, ssh_connection):
    """The connection a module must not cut: its ``management`` option, else the ssh connection
    it runs over (``SSH_CONNECTION``); None when neither is known (the guard is then skipped)."""
    mgmt = param or management_from_ssh_connection(ssh_connection)
    return normalize_management(mgmt) if mgmt else None


def _describe_mgmt(mgmt):
    return "new ssh connections from %s to %s port %d/tcp" % (mgmt["source"], mgmt.get("address") or "this host", mgmt["port"])


# --------------------------------------------------------------------------- firewalld guard

def _with_service_ports(settings, services, known=None):
    out = dict(settings)
    known = known or {}
    out["service_ports"] = {s: list((services.get(s) or {}).get("ports") or known.get(s) or [])
                            for s in settings.get("services") or []}
    return out


def firewalld_guard(fw_facts, zone, after, mgmt):
    """Raise WouldCutManagement when the zone settings ``after`` (``{runtime: settings, permanent: settings}``,
    as netdiag.reachability.firewalld_port returns them) stop accepting the management connection.

    ``fw_facts`` are firewall_info's ``firewalld`` facts (zones, services, default zone).  The zone that
    handles the management connection is found like firewalld does (source binding, else the
    default zone); a zone bound to an interface is treated as possibly handling it too.
    Returns a list of strings saying what was checked.
    """
    mgmt = normalize_management(mgmt)
    if not fw_facts or not fw_facts.get("running", True):
        return ["firewalld is not running: no runtime filtering to cut"]
    packet = {"family": "ipv4" if ":" not in mgmt["source"] else "ipv6", "proto": "tcp", "src": mgmt["source"],
              "dst": mgmt.get("address"), "sport": 40000, "dport": mgmt["port"], "ct_state": "new"}
    services = fw_facts.get("services") or {}
    checked = []
    for side, settings in sorted((after or {}).items()):
        config = fw_facts.get(side)
        if not config or zone not in (config.get("zones") or {}):
            continue
        config = copy.deepcopy(config)
        for name, settings_now in config["zones"].items():
            if "service_ports" not in settings_now:
                config["zones"][name] = _with_service_ports(settings_now, services)
        before_facts = {"running": True, "services": services, side: config}
        new_config = copy.deepcopy(config)
        new_config["zones"][zone] = dict(_with_service_ports(settings, services, config["zones"][zone].get("service_ports")),
                                         target=config["zones"][zone].get("target", settings.get("target")))
        after_facts = {"running": True, "services": services, side: new_config}
        was = zone_answer(before_facts, packet)
        now = zone_answer(after_facts, packet)
        handles = was["zone"] == zone or bool(config["zones"][zone].get("interfaces"))
        checked.append("%s: %s before, %s after (%s)" % (side, was["verdict"], now["verdict"], now["reason"]))
        if handles and was["verdict"] == "accept" and now["verdict"] != "accept":
            raise WouldCutManagement(
                "refusing to change zone %s: the %s configuration would no longer accept %s (before: %s; after: %s)"
                % (zone, side, _describe_mgmt(mgmt), was["reason"], now["reason"]))
    return checked


# --------------------------------------------------------------------------- ufw guard

_ANY = ("0.0.0.0/0", "::/0", "any")


def _ufw_port_match(spec, port):
    if spec == "any":
        return True
    for part in str(spec).split(","):
        lo, dummy, hi = part.partition(":")
        if lo.isdigit() and int(lo) <= port <= int(hi or lo):
            return True
    return False


def _ufw_addr_match(spec, address):
    if spec in _ANY or address is None:
        return True
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False


def ufw_verdict(facts, packet):
    """What ufw does with a new incoming packet ``{src, dst, proto, dport}``: ``(verdict, reason)``.

    ``verdict`` is ``accept``, ``drop``, ``reject`` or ``unknown`` (an application profile rule was
    reached, which this function does not expand).  Rules are tried in order; the first match decides,
    else the default incoming policy.  ufw disabled filters nothing.
    """
    if not facts.get("enabled"):
        return "accept", "ufw is disabled"
    v6 = ":" in packet["src"]
    for rule in facts.get("rules") or []:
        if rule.get("direction") != "in" or rule.get("routed") or bool(rule.get("v6")) != v6:
            continue
        if rule.get("interface_in"):
            continue  # bound to an interface: cannot tell which one ssh comes in on; not counted as an allow
        if rule.get("app") or rule.get("from_app"):
            return "unknown", "ufw rule %s uses an application profile" % rule.get("text")
        if rule.get("proto") not in ("any", packet["proto"]):
            continue
        if not _ufw_port_match(rule.get("port"), packet["dport"]) or rule.get("from_port") != "any":
            continue
        if not _ufw_addr_match(rule.get("from"), packet["src"]) or not _ufw_addr_match(rule.get("to"), packet.get("dst")):
            continue
        action = rule.get("action")
        verdict = {"allow": "accept", "limit": "accept", "deny": "drop", "reject": "reject"}.get(action, "unknown")
        return verdict, "ufw rule %s" % rule.get("text")
    policy = (facts.get("defaults") or {}).get("incoming") or "deny"
    return {"allow": "accept", "deny": "drop", "reject": "reject"}.get(policy, "drop"), "default incoming policy %s" % policy


def ufw_guard(before, after, mgmt):
    """Raise WouldCutManagement when ufw's facts ``after`` stop accepting the management connection."""
    mgmt = normalize_management(mgmt)
    packet = {"src": mgmt["source"], "dst": mgmt.get("address"), "proto": "tcp", "dport": mgmt["port"]}
    was, why_was = ufw_verdict(before, packet)
    now, why_now = ufw_verdict(after, packet)
    if was != "drop" and was != "reject" and now != "accept":
        raise WouldCutManagement("refusing to change ufw: it would no longer accept %s (before: %s %s; after: %s %s)"
                                 % (_describe_mgmt(mgmt), was, why_was, now, why_now))
    return ["ufw: %s before (%s), %s after (%s)" % (was, why_was, now, why_now)]
