# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The explainer: one verdict per flow, from saved facts, with no network.

Inputs are the plain results of the collection's modules:

``hosts``  ``{name: HOSTFACTS}`` for every managed host that was gathered, where
``HOSTFACTS = {addresses: [str], interfaces: [{name, address, prefix}], listeners: [...]
(listeners_info), sysctls: {...} (listeners_info), firewall: firewall_info result or a ruleset
dict (``{"tables": ...}``), cloud: [security_group_info verdicts]}``; every key is optional.
Cloud verdicts only count for the flow whose packet they evaluated.

``flows`` a list of ``{source, source_address, destination, address, port, protocol, expect,
probe, trace, cloud, cloud_error}`` where ``source``/``destination`` are host names (``destination`` may be None for a
plain address), ``probe`` is one probe result entry and ``trace`` a trace result or None.

Output (:func:`explain`): ``{schema, version, flows: [FINDING], summary}`` where FINDING is the
flow plus ``state``, ``cause``, ``culprit``, ``evidence``, ``fix``, ``conflicts``,
``outcome`` and ``matches_expect``.  The vocabulary is DESIGN.md's and docs/verdicts.md's.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils.gather import firewall as fw_info
from ansible_collections.netdiag.reachability.plugins.plugin_utils.listener_match import match_listener
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import model as rules_model
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import CAUSES, REPORT_SCHEMA as SCHEMA, REPORT_VERSION as SCHEMA_VERSION

EPHEMERAL_SPORT = 40000


# --------------------------------------------------------------------------- facts helpers

class _HostIndex(object):
    """Managed hosts by name and by address, with their rulesets compiled once."""

    def __init__(self, hosts):
        self.hosts = hosts or {}
        self.by_address = {}
        for name, facts in self.hosts.items():
            for addr in _addresses(facts):
                self.by_address.setdefault(addr, name)
        self._evaluators = {}

    def name_of(self, address):
        return self.by_address.get(address)

    def facts(self, name):
        return self.hosts.get(name) or {}

    def evaluator(self, name):
        """(Evaluator, error) for a host's firewall facts; (None, None) when none were gathered."""
        if name in self._evaluators:
            return self._evaluators[name]
        fw = self.facts(name).get("firewall")
        result = (None, None)
        if fw:
            ruleset = fw.get("ruleset") if "tables" not in fw else fw
            if ruleset is not None:
                try:
                    result = (Evaluator(rules_model.from_dict(ruleset)), None)
                except NetdiagError as exc:
                    result = (None, str(exc))
        self._evaluators[name] = result
        return result


def _addresses(facts):
    out = list(facts.get("addresses") or [])
    for iface in facts.get("interfaces") or []:
        if iface.get("address") and iface["address"] not in out:
            out.append(iface["address"])
    return out


def _in_interface(facts, peer):
    """The interface a packet from ``peer`` arrives on: the one whose subnet holds it, else the
    default-route interface."""
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return None
    default = None
    for iface in facts.get("interfaces") or []:
        if iface.get("default"):
            default = iface.get("name")
        try:
            net = ipaddress.ip_network("%s/%s" % (iface["address"], iface.get("prefix", 32)), strict=False)
        except (KeyError, ValueError):
            continue
        if ip in net and not net.prefixlen == net.max_prefixlen:
            return iface.get("name")
    return default or facts.get("default_interface")


def _family(address):
    try:
        return "ipv6" if ipaddress.ip_address(address).version == 6 else "ipv4"
    except ValueError:
        raise InputError("invalid address %r in a flow" % (address,))


def _evaluate(index, host, packet, path):
    ev, err = index.evaluator(host)
    if ev is None:
        return None if err is None else {"verdict": "indeterminate", "reason": "firewall facts of %s: %s" % (host, err)}
    facts = index.facts(host)
    pkt = dict(packet)
    if path in ("input", "forward") and "iif" not in pkt:
        iif = _in_interface(facts, packet["src"])
        if iif:
            pkt["iif"] = iif
    fw = facts.get("firewall") or {}
    try:
        if fw.get("firewalld") or fw.get("ufw"):
            # firewall_info's own answer: adds the firewalld zone and the ufw rule number or policy
            facts_fw = dict(fw, local_addresses=fw.get("local_addresses") or _addresses(facts) or None)
            return fw_info.evaluate_packets(facts_fw, [dict(pkt, path=path)])[0]
        return ev.evaluate(pkt, path=path, local_addresses=_addresses(facts) or None)
    except NetdiagError as exc:
        return {"verdict": "indeterminate", "reason": str(exc)}


# --------------------------------------------------------------------------- observation

def _observed(probe, address):
    probe = probe or {}
    reply = probe.get("reply") or {}
    kind = reply.get("kind")
    sender = reply.get("sender")
    if sender is None and kind in ("syn-ack", "rst", "udp"):
        sender = probe.get("address") or address
    by_target = reply.get("sender_is_target")
    if by_target is None and sender is not None:
        by_target = sender == (probe.get("address") or address)
    return {
        "state": probe.get("state"),
        "reason": probe.get("reason"),
        "reply": kind,
        "icmp_type": reply.get("icmp_type"),
        "icmp_code": reply.get("icmp_code"),
        "icmp_name": reply.get("icmp_name"),
        "sender": sender,
        "sender_is_target": by_target,
        "ttl": reply.get("ttl"),
        "rtt_ms": probe.get("rtt_ms"),
        "rate_limited": bool(probe.get("rate_limited")),
        "engine": probe.get("engine"),
    }


def _predicted_wire(verdict, listener_match, protocol):
    """What the rules + listeners predict a client sees: open | rst | icmp TYPE/CODE | silence."""
    if verdict is None or verdict.get("verdict") == "indeterminate":
        return None
    if verdict["verdict"] == "drop":
        return "silence"
    if verdict["verdict"] == "reject":
        rep = verdict.get("reply") or {}
        return "rst" if rep.get("kind") == "rst" else "icmp %s/%s" % (rep.get("type"), rep.get("code"))
    if listener_match is None:
        return None
    if listener_match.get("accepted"):
        return "open"
    return "rst" if protocol == "tcp" else "icmp 3/3"


def _wire_text(obs):
    if obs["reply"] == "syn-ack" or obs["state"] == "open":
        return "open"
    if obs["reply"] == "rst":
        return "rst"
    if obs["reply"] == "icmp":
        return "icmp %s/%s" % (obs["icmp_type"], obs["icmp_code"])
    if obs["reply"] is None:
        return "silence"
    return obs["reply"]


# --------------------------------------------------------------------------- culprits and fixes

_ZONE_RE = re.compile(r"^(?:filter_)?IN_([A-Za-z0-9_.-]+?)(?:_(?:allow|deny|log|pre|post))?$")


def _firewalld_zone(origin, fw_facts):
    if not origin:
        return None
    m = _ZONE_RE.match(origin.get("chain") or "")
    if m and (origin.get("table") == "firewalld" or (origin.get("backend") or "").startswith("iptables")):
        return m.group(1)
    return None


def _is_firewalld(origin, fw_facts):
    """firewalld made this rule: its own nft table, or its iptables-backend zone chains."""
    if origin and origin.get("table") == "firewalld":
        return True
    layers = (fw_facts or {}).get("layers") or {}
    fwd = layers.get("firewalld") if isinstance(layers, dict) else None
    if isinstance(fwd, dict) and fwd.get("active") is False:
        return False
    return _firewalld_zone(origin, fw_facts) is not None


def _firewalld_decided(origin, fw_facts):
    """The zone answer names the culprit only when firewalld runs and its own rules decided: a
    host with firewalld installed but stopped (zone files on disk) is decided by whatever else
    is loaded (iptables, nftables), and that is the culprit."""
    fwd = (fw_facts or {}).get("firewalld") or {}
    if not fwd.get("running"):
        return False
    if origin.get("table") == "firewalld":
        return True
    if _firewalld_zone(origin, fw_facts) is not None:
        return True
    # iptables backend: firewalld's own INPUT chain ends in its catch-all reject
    return fwd.get("backend") == "iptables" and (origin.get("backend") or "").startswith("iptables") \
        and (origin.get("chain") or "") == "INPUT" and not _is_ufw(origin, fw_facts)


def _ruleset_of(fw_facts):
    fw_facts = fw_facts or {}
    return fw_facts.get("ruleset") if "tables" not in fw_facts else fw_facts


def _is_ufw(origin, fw_facts):
    """ufw made this rule, or the decision is the policy of a chain ufw hooks into."""
    if origin and (origin.get("chain") or "").startswith("ufw"):
        return True
    if not origin or not (origin.get("backend") or "").startswith("iptables"):
        return False
    for table in (_ruleset_of(fw_facts) or {}).get("tables", []):
        if table.get("name") == origin.get("table") and table.get("family") == origin.get("family"):
            return any((c.get("name") or "").startswith("ufw-") for c in table.get("chains", []))
    return False


def _culprit_rule(host, verdict, fw_facts=None):
    if verdict is None:
        return None
    rule = verdict.get("rule")
    out = {"kind": "firewall", "host": host, "verdict": verdict.get("verdict"),
           "policy": bool(verdict.get("policy")), "reply": verdict.get("reply")}
    if rule:
        out.update({"backend": rule.get("backend"), "family": rule.get("family"), "table": rule.get("table"),
                    "chain": rule.get("chain"), "handle": rule.get("handle"), "line": rule.get("line"),
                    "text": rule.get("text")})
    elif verdict.get("chain"):
        ch = verdict["chain"]
        out.update({"backend": ch.get("backend"), "family": ch.get("family"), "table": ch.get("table"),
                    "chain": ch.get("chain"), "text": "policy %s of chain %s" % (verdict.get("verdict"), ch.get("chain"))})
    out["reason"] = verdict.get("reason")
    ufw_answer = verdict.get("ufw") or {}
    zone_answer = verdict.get("firewalld") or {}
    if ufw_answer.get("by") in ("rule", "default"):
        out["layer"] = "ufw"
        out["ufw"] = {k: ufw_answer.get(k) for k in ("by", "rule", "rule_text", "action", "default_policy", "text")}
        if ufw_answer.get("by") == "rule":
            out["text"] = "ufw rule %s: %s" % (ufw_answer.get("rule"), ufw_answer.get("rule_text") or out.get("text"))
        else:
            out["text"] = "ufw default incoming policy: %s (%s)" % (ufw_answer.get("default_policy"), out.get("text"))
    elif zone_answer.get("zone") and not zone_answer.get("error") and _firewalld_decided(out, fw_facts):
        out["layer"] = "firewalld"
        out["zone"] = zone_answer.get("zone")
        out["zone_from"] = zone_answer.get("zone_from")
        out["zone_reason"] = zone_answer.get("zone_reason")
        out["zone_target"] = zone_answer.get("target")
        out["text"] = "firewalld zone %s (%s) does not allow it: %s" % (
            out["zone"], zone_answer.get("zone_reason") or "zone from %s" % zone_answer.get("zone_from"), out.get("text"))
        if zone_answer.get("agrees_with_ruleset") is False:
            out["zone_disagreement"] = zone_answer.get("disagreement")
    elif fw_facts is not None and _is_ufw(out, fw_facts):
        out["layer"] = "ufw"
        if out.get("policy"):
            what = "deny" if verdict.get("verdict") == "drop" else "reject"
            out["text"] = "ufw default incoming policy: %s (%s)" % (what, out.get("text"))
    elif fw_facts is not None and _is_firewalld(out, fw_facts):
        out["layer"] = "firewalld"
        out["zone"] = _firewalld_zone(out, fw_facts)
    return out


def _rule_position(index, host, origin):
    """1-based position of an iptables rule within its chain (for ``iptables -I CHAIN N``)."""
    ruleset = _ruleset_of(index.facts(host).get("firewall"))
    for table in (ruleset or {}).get("tables", []):
        if table.get("name") != origin.get("table") or table.get("backend") != origin.get("backend"):
            continue
        for chain in table.get("chains", []):
            if chain.get("name") != origin.get("chain"):
                continue
            for pos, rule in enumerate(chain.get("rules", []), 1):
                if (rule.get("origin") or {}).get("line") == origin.get("line"):
                    return pos
    return None


def _firewall_fix(index, host, culprit, flow, path):
    """The smallest change that lets exactly this flow through the culprit's layer."""
    port, proto = flow["port"], flow["protocol"]
    spec = "%s/%s" % (port, proto)
    fw_facts = index.facts(host).get("firewall") or {}
    origin = {k: culprit.get(k) for k in ("backend", "family", "table", "chain", "handle", "line", "text")}
    if culprit.get("layer") == "firewalld" or (_is_firewalld(origin, fw_facts) and not _is_ufw(origin, fw_facts)):
        zone = culprit.get("zone") or _firewalld_zone(origin, fw_facts) or "public"
        cmds = ["firewall-cmd --zone=%s --add-port=%s" % (zone, spec),
                "firewall-cmd --permanent --zone=%s --add-port=%s" % (zone, spec)]
        return {"summary": "open %s in firewalld zone %s on %s (runtime and permanent)" % (spec, zone, host),
                "commands": [{"host": host, "command": c} for c in cmds], "manual": False,
                "open_ports": {"host": host, "backend": "firewalld", "zone": zone, "ports": [spec]}}
    if culprit.get("layer") == "ufw" or _is_ufw(origin, fw_facts):
        cmd = "ufw allow from %s to any port %s proto %s" % (flow["source_address"], port, proto) \
            if flow.get("source_address") else "ufw allow %s" % spec
        return {"summary": "allow %s in ufw on %s" % (spec, host), "commands": [{"host": host, "command": cmd}],
                "manual": False, "open_ports": {"host": host, "backend": "ufw", "ports": [spec],
                                                "source": flow.get("source_address")}}
    backend = origin.get("backend") or ""
    match_dst = " ip daddr %s" % flow["address"] if path == "forward" else ""
    if backend == "nftables":
        fam, table, chain = origin.get("family"), origin.get("table"), origin.get("chain")
        if origin.get("handle") is not None and not culprit.get("policy"):
            cmd = "nft insert rule %s %s %s position %s%s %s dport %s accept" % (
                fam, table, chain, origin["handle"], match_dst, proto, port)
        else:
            cmd = "nft add rule %s %s %s%s %s dport %s accept" % (fam, table, chain, match_dst, proto, port)
        return {"summary": "accept %s before the rule that blocks it (%s %s %s) on %s" % (spec, fam, table, chain, host),
                "commands": [{"host": host, "command": cmd}], "manual": False,
                "open_ports": {"host": host, "backend": "nftables", "ports": [spec], "family": fam, "table": table,
                               "chain": chain, "before_handle": origin.get("handle")}}
    if backend.startswith("iptables"):
        tool = "iptables-legacy" if backend == "iptables-legacy" else "iptables"
        if origin.get("family") in ("ip6", "ipv6"):
            tool = tool.replace("iptables", "ip6tables")
        pos = _rule_position(index, host, origin) if not culprit.get("policy") else None
        where = "%s %d" % (origin.get("chain"), pos) if pos else "%s" % origin.get("chain")
        dst = " -d %s" % flow["address"] if path == "forward" else ""
        cmd = "%s -t %s -I %s%s -p %s --dport %s -j ACCEPT" % (tool, origin.get("table") or "filter", where, dst, proto, port)
        return {"summary": "accept %s before the rule that blocks it (%s chain %s) on %s" % (spec, tool, origin.get("chain"), host),
                "commands": [{"host": host, "command": cmd}], "manual": False,
                "open_ports": {"host": host, "backend": backend, "ports": [spec], "table": origin.get("table"),
                               "chain": origin.get("chain"), "position": pos}}
    return {"summary": "allow %s on %s (the blocking layer is not one the collection can change)" % (spec, host),
            "commands": [], "manual": True, "open_ports": None}


def _manual(summary, host=None, commands=()):
    return {"summary": summary, "commands": [{"host": host, "command": c} for c in commands], "manual": True,
            "open_ports": None}


# --------------------------------------------------------------------------- the decision

def explain_flow(flow, index):
    address = flow["address"]
    port, proto = int(flow["port"]), flow["protocol"]
    family = _family(address)
    obs = _observed(flow.get("probe"), address)
    dest = flow.get("destination") or index.name_of(address)
    src_name = flow.get("source")
    src_addr = flow.get("source_address")
    packet = {"family": family, "proto": proto, "src": src_addr or ("0.0.0.0" if family == "ipv4" else "::"),
              "dst": address, "sport": EPHEMERAL_SPORT, "dport": port}
    evidence = {"observed": obs}
    conflicts = []
    finding = {"cause": "unknown", "culprit": None, "fix": None}

    # What the destination's own layers say
    dest_facts = index.facts(dest) if dest else {}
    dest_verdict = _evaluate(index, dest, packet, "input") if dest and src_addr else None
    nat = None
    if dest_verdict and dest_verdict.get("nat"):
        nat = dest_verdict["nat"]
    lmatch = None
    if dest and dest_facts.get("listeners") is not None and not nat:
        try:
            lmatch = match_listener(dest_facts["listeners"], address, port, proto)
        except NetdiagError as exc:
            lmatch = {"accepted": None, "cause": "unknown", "reason": str(exc)}
    if dest_verdict is not None:
        evidence["destination_firewall"] = _brief(dest_verdict)
    if lmatch is not None:
        evidence["listener"] = {"accepted": lmatch.get("accepted"), "miss": lmatch.get("miss"),
                                "reason": lmatch.get("reason"),
                                "listener": _listener_brief(lmatch.get("listener"))}
    src_verdict = None
    if src_name and src_addr:
        src_verdict = _evaluate(index, src_name, packet, "output")
        if src_verdict is not None:
            evidence["source_firewall"] = _brief(src_verdict)
    trace = flow.get("trace")
    if trace:
        evidence["trace"] = {"verdict": trace.get("verdict"), "reason": trace.get("reason"),
                             "blocking_hop": trace.get("blocking_hop"),
                             "hops": [{"ttl": h.get("ttl"), "address": h.get("address"), "reply": h.get("reply")}
                                      for h in trace.get("hops") or []]}
    path = _path_verdicts(index, flow, packet, trace, dest)
    if path:
        evidence["path"] = [{"host": p["host"], "verdict": _brief(p["verdict"])} for p in path]
    if nat:
        evidence["nat"] = nat
    cloud = _cloud_for_flow(flow, dest_facts, src_addr)
    if cloud:
        evidence["cloud"] = [_cloud_brief(c) for c in cloud]
    if flow.get("cloud_error"):
        evidence["cloud_error"] = flow["cloud_error"]

    state = obs["state"]
    if state == "open":
        finding["cause"] = "ok"
        if lmatch and lmatch.get("cause") == "listen_backlog_full":
            evidence["note"] = lmatch["reason"]
    elif state == "unreachable":
        finding["cause"] = "host_down"
        finding["culprit"] = {"kind": "hop", "address": obs["sender"], "reply": obs["icmp_name"],
                              "text": "%s answers %s for %s" % (obs["sender"], obs["icmp_name"], address)}
        finding["fix"] = _manual("check that %s is up and routed (%s says %s)" % (address, obs["sender"], obs["icmp_name"]))
    elif obs["reply"] == "icmp" and obs["sender_is_target"] is False:
        _path_block_by_reject(finding, index, flow, obs, trace, path)
    elif obs["reply"] == "icmp":
        _icmp_from_target(finding, index, flow, obs, dest, dest_verdict, lmatch, conflicts)
    elif obs["reply"] == "rst":
        _reset(finding, index, flow, obs, dest, dest_verdict, lmatch, nat, conflicts)
    else:
        _silence(finding, index, flow, obs, dest, dest_verdict, lmatch, src_verdict, path, trace, cloud, conflicts)

    # Wire vs rules: say so when they disagree
    predicted = _predicted_wire(dest_verdict, lmatch, proto) if not nat else None
    wire = _wire_text(obs)
    if predicted and predicted != wire and not (obs["rate_limited"] and wire == "silence") \
            and finding["cause"] not in ("path_block", "source_firewall", "security_group", "host_down"):
        if not (proto == "udp" and wire == "silence" and predicted == "open"):
            conflicts.append("the rules and listeners of %s predict %s, the wire shows %s" % (dest, predicted, wire))
    cloud_denied = [c for c in cloud if c.get("verdict") in ("drop", "deny", "reject")]
    if state == "open" and cloud_denied:
        conflicts.append("the cloud layers deny it (%s), yet the wire shows it open: the probe's path may not cross "
                         "them, or the rules read are not the ones in force" % cloud_denied[0].get("reason"))
    outcome = "open" if state == "open" else "closed"
    finding.update({
        "source": src_name, "source_address": src_addr, "destination": dest, "address": address,
        "port": port, "protocol": proto, "expect": flow.get("expect", "open"),
        "state": state, "reason": obs["reason"], "outcome": outcome,
        "matches_expect": outcome == flow.get("expect", "open"),
        "evidence": evidence, "conflicts": conflicts,
    })
    if finding["cause"] == "ok" and finding["fix"] is None:
        finding["fix"] = None
    return finding


def _cloud_for_flow(flow, dest_facts, src_addr):
    """security_group_info verdicts for exactly this flow: the ones assemble() matched, plus those in
    the destination's facts whose packet is this flow's (protocol, port, address; source when given).
    A whole module result (``{verdicts: [...]}``) is taken apart; anything not a verdict is ignored."""
    out = []
    for source in (flow.get("cloud"), dest_facts.get("cloud")):
        if isinstance(source, dict):
            source = source.get("verdicts") if "verdicts" in source else [source]
        if not isinstance(source, list):
            continue
        for c in source:
            if isinstance(c, dict) and c.get("verdict") and c not in out and _cloud_matches(c, flow, src_addr):
                out.append(c)
    return out


def _cloud_matches(verdict, flow, src_addr):
    pkt = verdict.get("packet")
    if not isinstance(pkt, dict):
        return False
    if str(pkt.get("proto") or "").lower() != flow["protocol"]:
        return False
    if flow["protocol"] != "icmp" and str(pkt.get("dport")) != str(flow["port"]):
        return False
    if pkt.get("dst") and pkt["dst"] != flow["address"]:
        return False
    return not (pkt.get("src") and src_addr and pkt["src"] != src_addr)


def _cloud_brief(verdict):
    return {k: verdict.get(k) for k in ("provider", "interface", "verdict", "layer", "rule", "policy", "reason")}


def _cloud_culprit(verdict):
    rule = verdict.get("rule") or {}
    return {"kind": "security_group", "provider": verdict.get("provider"), "interface": verdict.get("interface"),
            "layer": verdict.get("layer"), "rule": rule or None, "policy": bool(verdict.get("policy")),
            "text": verdict.get("reason")}


def _cloud_fix(verdict, flow):
    fixes = [f for f in (verdict.get("fixes") or [verdict.get("fix")]) if isinstance(f, dict)]
    if not fixes:
        return _manual("allow %s/%s to %s in the %s" % (flow["port"], flow["protocol"], flow["address"],
                                                        (verdict.get("layer") or "security group").replace("_", " ")))
    parts = []
    for f in fixes:
        what = "add %s" % _cloud_rule_text(f.get("rule")) if f.get("command") else (f.get("note") or "add the rule")
        parts.append("%s %s: %s" % ((f.get("layer") or "cloud").replace("_", " "), f.get("target"), what))
    fix = _manual("; ".join(parts), None, [f["command"] for f in fixes if f.get("command")])
    fix["cloud"] = fixes
    return fix


def _cloud_rule_text(rule):
    rule = rule or {}
    ports = rule.get("from_port") if rule.get("from_port") == rule.get("to_port") else \
        "%s-%s" % (rule.get("from_port"), rule.get("to_port"))
    return "%s %s %s %s" % (rule.get("action") or "allow", rule.get("protocol"), ports,
                            "from %s" % rule["source"] if rule.get("source") else "to %s" % rule.get("destination"))


def _brief(verdict):
    if verdict is None:
        return None
    rule = verdict.get("rule") or {}
    return {"verdict": verdict.get("verdict"), "reply": verdict.get("reply"), "policy": bool(verdict.get("policy")),
            "rule": {k: rule.get(k) for k in ("backend", "family", "table", "chain", "handle", "line", "text")} if rule else None,
            "reason": verdict.get("reason"), "nat": verdict.get("nat")}


def _listener_brief(lst):
    if not lst:
        return None
    return {k: lst.get(k) for k in ("protocol", "address", "port", "scope", "process", "pids")}


def _path_verdicts(index, flow, packet, trace, dest):
    """Forward-path verdicts of managed routers the trace went through (or that own the gateway)."""
    out = []
    seen = set()
    for hop in (trace or {}).get("hops") or []:
        name = index.name_of(hop.get("address"))
        if not name or name == dest or name == flow.get("source") or name in seen:
            continue
        seen.add(name)
        verdict = _evaluate(index, name, packet, "forward")
        if verdict is not None:
            out.append({"host": name, "ttl": hop.get("ttl"), "verdict": verdict})
    return out


def _path_block_by_reject(finding, index, flow, obs, trace, path):
    finding["cause"] = "path_block"
    hop_name = index.name_of(obs["sender"])
    ttl = None
    if trace and trace.get("blocking_hop"):
        ttl = trace["blocking_hop"].get("ttl")
    culprit = {"kind": "hop", "address": obs["sender"], "host": hop_name, "ttl": ttl, "reply": obs["icmp_name"],
               "text": "%s rejects with ICMP %s/%s (%s)" % (obs["sender"], obs["icmp_type"], obs["icmp_code"], obs["icmp_name"])}
    for p in path:
        if p["host"] == hop_name and p["verdict"].get("verdict") == "reject":
            rule = _culprit_rule(hop_name, p["verdict"], index.facts(hop_name).get("firewall") or {})
            culprit["rule"] = rule
            culprit["text"] += ": %s %s %s %s handle %s: %s" % (
                rule.get("backend"), rule.get("family"), rule.get("table"), rule.get("chain"),
                rule.get("handle") if rule.get("handle") is not None else rule.get("line"), rule.get("text"))
            finding["fix"] = _firewall_fix(index, hop_name, rule, flow, "forward")
    finding["culprit"] = culprit
    if finding["fix"] is None:
        finding["fix"] = _manual("allow %s/%s to %s on the device at %s (it rejects with %s)" % (
            flow["port"], flow["protocol"], flow["address"], obs["sender"], obs["icmp_name"]), hop_name)


def _icmp_from_target(finding, index, flow, obs, dest, dest_verdict, lmatch, conflicts):
    proto = flow["protocol"]
    port_unreach = (obs["icmp_type"], obs["icmp_code"]) in ((3, 3), (1, 4))
    rejected_by_rules = dest_verdict is not None and dest_verdict.get("verdict") == "reject"
    if proto == "udp" and port_unreach and not rejected_by_rules:
        # the kernel answers a closed UDP port with 3/3 itself
        _listener_cause(finding, flow, dest, lmatch, default="no_listener")
        return
    # Linux answers a closed TCP port with RST, never ICMP: an ICMP error from the target is a firewall.
    finding["cause"] = "host_firewall"
    if rejected_by_rules:
        rule = _culprit_rule(dest, dest_verdict, index.facts(dest).get("firewall") or {})
        finding["culprit"] = rule
        finding["fix"] = _firewall_fix(index, dest, rule, flow, "input")
    else:
        finding["culprit"] = {"kind": "firewall", "host": dest, "text": "a firewall on %s rejects with ICMP %s/%s (%s)"
                              % (flow["address"], obs["icmp_type"], obs["icmp_code"], obs["icmp_name"])}
        finding["fix"] = _manual("find the rule on %s that rejects %s/%s with %s" % (
            dest or flow["address"], flow["port"], proto, obs["icmp_name"]), dest)
        if dest_verdict is None:
            conflicts.append("no firewall facts from %s: the rejecting rule cannot be named" % (dest or flow["address"]))


def _listener_cause(finding, flow, dest, lmatch, default):
    spec = "%s/%s" % (flow["port"], flow["protocol"])
    if lmatch is None:
        finding["cause"] = default
        finding["culprit"] = {"kind": "listener", "host": dest, "text": "nothing accepts %s on %s (no listener facts to say why)"
                              % (spec, flow["address"])}
        finding["fix"] = _manual("check the service that should listen on %s on %s" % (spec, dest or flow["address"]), dest)
        return
    lst = _listener_brief(lmatch.get("listener"))
    cause = lmatch.get("cause")
    if lmatch.get("accepted"):
        finding["cause"] = "unknown"
        finding["culprit"] = {"kind": "listener", "host": dest, "listener": lst, "text": lmatch.get("reason")}
        return
    finding["cause"] = cause if cause in CAUSES else default
    finding["culprit"] = {"kind": "listener", "host": dest, "listener": lst, "miss": lmatch.get("miss"),
                          "text": lmatch.get("reason")}
    if finding["cause"] == "loopback_only":
        finding["fix"] = _manual("make %s listen on %s or 0.0.0.0 instead of %s (port %s)" % (
            (lst or {}).get("process") or "the service", flow["address"], (lst or {}).get("address"), spec), dest)
    elif finding["cause"] == "wrong_address":
        finding["fix"] = _manual("make the service listen on %s:%s (%s)" % (flow["address"], flow["port"], lmatch.get("reason")), dest)
    else:
        finding["fix"] = _manual("start the service that should listen on %s on %s (nothing listens there)" % (spec, dest), dest)


def _reset(finding, index, flow, obs, dest, dest_verdict, lmatch, nat, conflicts):
    if dest_verdict is not None and dest_verdict.get("verdict") == "reject" and \
            (dest_verdict.get("reply") or {}).get("kind") == "rst":
        finding["cause"] = "host_firewall"
        rule = _culprit_rule(dest, dest_verdict, index.facts(dest).get("firewall") or {})
        finding["culprit"] = rule
        finding["fix"] = _firewall_fix(index, dest, rule, flow, "input")
        return
    if nat:
        _nat(finding, index, flow, dest, nat)
        return
    _listener_cause(finding, flow, dest, lmatch, default="no_listener")


def _nat(finding, index, flow, dest, nat):
    inside_addr, inside_port = nat.get("dst"), nat.get("dport")
    inside = index.name_of(inside_addr)
    rule = nat.get("rule") or {}
    text = "%s:%s is mapped to %s:%s by %s" % (flow["address"], flow["port"], inside_addr, inside_port, rule.get("text"))
    finding["cause"] = "nat"
    culprit = {"kind": "nat", "host": dest, "backend": rule.get("backend"), "table": rule.get("table"),
               "chain": rule.get("chain"), "handle": rule.get("handle"), "text": rule.get("text"),
               "maps_to": {"address": inside_addr, "port": inside_port, "host": inside}}
    listening = []
    facts = index.facts(inside) if inside else {}
    if facts.get("listeners") is not None and inside_port:
        m = match_listener(facts["listeners"], inside_addr, inside_port, flow["protocol"])
        culprit["inside_listener"] = {"accepted": m.get("accepted"), "reason": m.get("reason")}
        listening = sorted({"%s/%s" % (l["port"], l["protocol"]) for l in facts["listeners"]
                            if l.get("scope") != "loopback" and l.get("protocol") == flow["protocol"]})
        text += "; %s" % m.get("reason")
    culprit["summary"] = text
    finding["culprit"] = culprit
    hint = (" (%s listens on %s)" % (inside, ", ".join(listening))) if listening else ""
    finding["fix"] = _manual("point the port mapping %s:%s at a port where the service listens%s: %s" % (
        flow["address"], flow["port"], hint, rule.get("text")), dest)


def _silence(finding, index, flow, obs, dest, dest_verdict, lmatch, src_verdict, path, trace, cloud, conflicts):
    proto = flow["protocol"]
    if obs["rate_limited"]:
        conflicts.append("the probe could not tell silence from a rate-limited ICMP reject (rate_limited)")
    if src_verdict is not None and src_verdict.get("verdict") in ("drop", "reject"):
        finding["cause"] = "source_firewall"
        rule = _culprit_rule(flow.get("source"), src_verdict, index.facts(flow.get("source")).get("firewall") or {})
        finding["culprit"] = rule
        finding["fix"] = _manual("allow outgoing %s/%s to %s on %s: %s" % (
            flow["port"], proto, flow["address"], flow.get("source"), (rule or {}).get("text")), flow.get("source"))
        return
    for p in path:
        if p["verdict"].get("verdict") in ("drop", "reject"):
            finding["cause"] = "path_block"
            rule = _culprit_rule(p["host"], p["verdict"], index.facts(p["host"]).get("firewall") or {})
            hop_addr = None
            for h in (trace or {}).get("hops") or []:
                if index.name_of(h.get("address")) == p["host"]:
                    hop_addr = h.get("address")
                    break
            finding["culprit"] = {"kind": "hop", "host": p["host"], "address": hop_addr, "ttl": p.get("ttl"),
                                  "rule": rule, "text": "%s drops it: %s %s %s %s handle %s: %s" % (
                                      p["host"], rule.get("backend"), rule.get("family"), rule.get("table"), rule.get("chain"),
                                      rule.get("handle") if rule.get("handle") is not None else rule.get("line"),
                                      rule.get("text"))}
            finding["fix"] = _firewall_fix(index, p["host"], rule, flow, "forward")
            return
    # the cloud layers sit in front of the host: a packet they deny never reaches its firewall
    denied = [c for c in cloud if c.get("verdict") in ("drop", "deny", "reject")]
    if denied:
        finding["cause"] = "security_group"
        finding["culprit"] = _cloud_culprit(denied[0])
        finding["fix"] = _cloud_fix(denied[0], flow)
        if dest_verdict is not None and dest_verdict.get("verdict") in ("drop", "reject"):
            conflicts.append("%s's own firewall would drop it too, once the cloud lets it through: %s" % (
                dest, dest_verdict.get("reason")))
        return
    if dest_verdict is not None and dest_verdict.get("verdict") in ("drop", "reject"):
        finding["cause"] = "host_firewall"
        rule = _culprit_rule(dest, dest_verdict, index.facts(dest).get("firewall") or {})
        finding["culprit"] = rule
        finding["fix"] = _firewall_fix(index, dest, rule, flow, "input")
        return
    if lmatch and lmatch.get("cause") == "listen_backlog_full":
        finding["cause"] = "listen_backlog_full"
        finding["culprit"] = {"kind": "listener", "host": dest, "listener": _listener_brief(lmatch.get("listener")),
                              "text": lmatch.get("reason")}
        finding["fix"] = _manual("the service on %s does not accept() fast enough: raise its backlog "
                                 "(and net.core.somaxconn) or fix the service" % dest, dest)
        return
    if proto == "udp" and obs["state"] == "open|filtered" and lmatch and lmatch.get("accepted") \
            and (dest_verdict is None or dest_verdict.get("verdict") == "accept"):
        finding["cause"] = "unknown"
        finding["culprit"] = {"kind": "listener", "host": dest, "listener": _listener_brief(lmatch.get("listener")),
                              "text": "the datagram is accepted by %s, but the service did not answer the probe" % dest}
        return
    if trace and trace.get("verdict") == "silent_after_hop" and dest_verdict is not None \
            and dest_verdict.get("verdict") == "accept":
        hop = trace.get("blocking_hop") or {}
        finding["cause"] = "path_block"
        finding["culprit"] = {"kind": "hop", "address": hop.get("address"), "ttl": hop.get("ttl"),
                              "text": "packets die after hop %s (%s); %s's own rules accept them" % (
                                  hop.get("ttl"), hop.get("address"), dest)}
        finding["fix"] = _manual("find what drops %s/%s after %s" % (flow["port"], proto, hop.get("address")))
        return
    finding["cause"] = "unknown"
    why = []
    if dest is None or dest not in index.hosts:
        why.append("%s is not a managed host (no facts)" % (dest or flow["address"]))
    elif dest_verdict is None:
        why.append("no firewall facts from %s" % dest)
    if trace and trace.get("reason"):
        why.append(trace["reason"])
    for c in cloud:
        if c.get("verdict") == "indeterminate":
            why.append("cloud layer of %s: %s" % (c.get("interface"), c.get("reason")))
    if flow.get("cloud_error"):
        why.append("the cloud layers could not be read: %s" % flow["cloud_error"])
    finding["culprit"] = {"kind": "unknown", "text": "; ".join(why) or "the packets vanish and no layer read explains it"}


def explain(flows, hosts=None):
    """Explain every flow; return the versioned report document."""
    if not isinstance(flows, list):
        raise InputError("flows must be a list, got %s" % type(flows).__name__)
    index = _HostIndex(hosts or {})
    findings = []
    for flow in flows:
        for key in ("address", "port", "protocol"):
            if key not in flow:
                raise InputError("flow %r has no %r" % (flow, key))
        findings.append(explain_flow(flow, index))
    by_cause = {}
    for f in findings:
        by_cause[f["cause"]] = by_cause.get(f["cause"], 0) + 1
    failed = [f for f in findings if f["cause"] != "ok"]
    mismatched = [f for f in findings if not f["matches_expect"]]
    return {"schema": SCHEMA, "version": SCHEMA_VERSION, "flows": findings,
            "summary": {"flows": len(findings), "ok": len(findings) - len(failed), "failed": len(failed),
                        "by_cause": by_cause, "mismatched": len(mismatched),
                        "conflicts": sum(1 for f in findings if f["conflicts"])}}
