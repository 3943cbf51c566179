# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cloud layers (security_group_info verdicts) in the diagnosis: the verdicts that belong to a
flow, and the culprit and fix when one of them denies it.
"""

from __future__ import annotations

from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.fixes import manual


def cloud_for_flow(flow, dest_facts, src_addr):
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


def cloud_brief(verdict):
    return {k: verdict.get(k) for k in ("provider", "interface", "verdict", "layer", "rule", "policy", "reason")}


def cloud_culprit(verdict):
    rule = verdict.get("rule") or {}
    return {"kind": "security_group", "provider": verdict.get("provider"), "interface": verdict.get("interface"),
            "layer": verdict.get("layer"), "rule": rule or None, "policy": bool(verdict.get("policy")),
            "text": verdict.get("reason")}


def cloud_fix(verdict, flow):
    fixes = [f for f in (verdict.get("fixes") or [verdict.get("fix")]) if isinstance(f, dict)]
    if not fixes:
        return manual("allow %s/%s to %s in the %s" % (flow["port"], flow["protocol"], flow["address"],
                                                       (verdict.get("layer") or "security group").replace("_", " ")))
    parts = []
    for f in fixes:
        what = "add %s" % _cloud_rule_text(f.get("rule")) if f.get("command") else (f.get("note") or "add the rule")
        parts.append("%s %s: %s" % ((f.get("layer") or "cloud").replace("_", " "), f.get("target"), what))
    fix = manual("; ".join(parts), None, [f["command"] for f in fixes if f.get("command")])
    fix["cloud"] = fixes
    return fix


def _cloud_rule_text(rule):
    rule = rule or {}
    ports = rule.get("from_port") if rule.get("from_port") == rule.get("to_port") else \
        "%s-%s" % (rule.get("from_port"), rule.get("to_port"))
    return "%s %s %s %s" % (rule.get("action") or "allow", rule.get("protocol"), ports,
                            "from %s" % rule["source"] if rule.get("source") else "to %s" % rule.get("destination"))
