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
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import format_port_spec, parse_port_spec
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import REPORT_SCHEMA
from ansible_collections.netdiag.reachability.plugins.module_utils._common.addresses import address_or_network as _address_or_network

BACKENDS = ("firewalld", "ufw", "nftables", "iptables-nft", "iptables-legacy")
RAW_BACKENDS = ("nftables", "iptables-nft", "iptables-legacy")
BACKEND_PROTOCOLS = {"firewalld": ("tcp", "udp", "sctp", "dccp"), "ufw": ("tcp", "udp"),
                     "nftables": ("tcp", "udp", "sctp", "dccp"), "iptables-nft": ("tcp", "udp", "sctp", "dccp"),
                     "iptables-legacy": ("tcp", "udp", "sctp", "dccp")}
RULE_KEYS = ("host", "backend", "ports", "state", "zone", "source", "family", "table", "chain",
             "verify_from", "verify_address")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
FIXABLE_CAUSES = ("host_firewall",)


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
