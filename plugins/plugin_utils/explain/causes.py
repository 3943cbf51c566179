# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decision: one cause, culprit and fix per flow (:func:`explain_flow`), from the gathered
:class:`~.evidence.Evidence`, one function per kind of answer on the wire.
"""

from __future__ import annotations

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import CAUSES
from ansible_collections.netdiag.reachability.plugins.plugin_utils.listener_match import match_listener
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.facts import address_family, evaluate
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.evidence import (
    Evidence, brief, listener_brief, observed, path_verdicts, predicted_wire, wire_text)
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.fixes import culprit_rule, firewall_fix, manual
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.cloud import cloud_brief, cloud_culprit, cloud_fix, cloud_for_flow


EPHEMERAL_SPORT = 40000


def explain_flow(flow, index):
    """The finding for one flow: gather the evidence, decide the cause, say where the wire and the rules disagree."""
    address = flow["address"]
    port, proto = int(flow["port"]), flow["protocol"]
    family = address_family(address)
    obs = observed(flow.get("probe"), address)
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
    dest_verdict = evaluate(index, dest, packet, "input") if dest and src_addr else None
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
        evidence["destination_firewall"] = brief(dest_verdict)
    if lmatch is not None:
        evidence["listener"] = {"accepted": lmatch.get("accepted"), "miss": lmatch.get("miss"),
                                "reason": lmatch.get("reason"),
                                "listener": listener_brief(lmatch.get("listener"))}
    src_verdict = None
    if src_name and src_addr:
        src_verdict = evaluate(index, src_name, packet, "output")
        if src_verdict is not None:
            evidence["source_firewall"] = brief(src_verdict)
    trace = flow.get("trace")
    if trace:
        evidence["trace"] = {"verdict": trace.get("verdict"), "reason": trace.get("reason"),
                             "blocking_hop": trace.get("blocking_hop"),
                             "hops": [{"ttl": h.get("ttl"), "address": h.get("address"), "reply": h.get("reply")}
                                      for h in trace.get("hops") or []]}
    path = path_verdicts(index, flow, packet, trace, dest)
    if path:
        evidence["path"] = [{"host": p["host"], "verdict": brief(p["verdict"])} for p in path]
    if nat:
        evidence["nat"] = nat
    cloud = cloud_for_flow(flow, dest_facts, src_addr)
    if cloud:
        evidence["cloud"] = [cloud_brief(c) for c in cloud]
    if flow.get("cloud_error"):
        evidence["cloud_error"] = flow["cloud_error"]
    ev = Evidence(flow=flow, index=index, obs=obs, dest=dest, dest_facts=dest_facts, dest_verdict=dest_verdict, lmatch=lmatch,
                  src_verdict=src_verdict, path=path, trace=trace, cloud=cloud, nat=nat, conflicts=conflicts, finding=finding)

    state = obs["state"]
    if state == "open":
        finding["cause"] = "ok"
        if lmatch and lmatch.get("cause") == "listen_backlog_full":
            evidence["note"] = lmatch["reason"]
    elif state == "unreachable":
        finding["cause"] = "host_down"
        finding["culprit"] = {"kind": "hop", "address": obs["sender"], "reply": obs["icmp_name"],
                              "text": "%s answers %s for %s" % (obs["sender"], obs["icmp_name"], address)}
        finding["fix"] = manual("check that %s is up and routed (%s says %s)" % (address, obs["sender"], obs["icmp_name"]))
    elif obs["reply"] == "icmp" and obs["sender_is_target"] is False:
        _path_block_by_reject(ev)
    elif obs["reply"] == "icmp":
        _icmp_from_target(ev)
    elif obs["reply"] == "rst":
        _reset(ev)
    else:
        _silence(ev)

    # Wire vs rules: say so when they disagree
    predicted = predicted_wire(dest_verdict, lmatch, proto) if not nat else None
    wire = wire_text(obs)
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


# --------------------------------------------------------------------------- one function per answer on the wire

def _path_block_by_reject(ev):
    finding, index, flow, obs, trace, path = ev.finding, ev.index, ev.flow, ev.obs, ev.trace, ev.path
    finding["cause"] = "path_block"
    hop_name = index.name_of(obs["sender"])
    ttl = None
    if trace and trace.get("blocking_hop"):
        ttl = trace["blocking_hop"].get("ttl")
    culprit = {"kind": "hop", "address": obs["sender"], "host": hop_name, "ttl": ttl, "reply": obs["icmp_name"],
               "text": "%s rejects with ICMP %s/%s (%s)" % (obs["sender"], obs["icmp_type"], obs["icmp_code"], obs["icmp_name"])}
    for p in path:
        if p["host"] == hop_name and p["verdict"].get("verdict") == "reject":
            rule = culprit_rule(hop_name, p["verdict"], index.facts(hop_name).get("firewall") or {})
            culprit["rule"] = rule
            culprit["text"] += ": %s %s %s %s handle %s: %s" % (
                rule.get("backend"), rule.get("family"), rule.get("table"), rule.get("chain"),
                rule.get("handle") if rule.get("handle") is not None else rule.get("line"), rule.get("text"))
            finding["fix"] = firewall_fix(index, hop_name, rule, flow, "forward")
    finding["culprit"] = culprit
    if finding["fix"] is None:
        finding["fix"] = manual("allow %s/%s to %s on the device at %s (it rejects with %s)" % (
            flow["port"], flow["protocol"], flow["address"], obs["sender"], obs["icmp_name"]), hop_name)


def _icmp_from_target(ev):
    finding, index, flow, obs, dest = ev.finding, ev.index, ev.flow, ev.obs, ev.dest
    dest_verdict, conflicts = ev.dest_verdict, ev.conflicts
    proto = flow["protocol"]
    port_unreach = (obs["icmp_type"], obs["icmp_code"]) in ((3, 3), (1, 4))
    rejected_by_rules = dest_verdict is not None and dest_verdict.get("verdict") == "reject"
    if proto == "udp" and port_unreach and not rejected_by_rules:
        # the kernel answers a closed UDP port with 3/3 itself
        _listener_cause(ev, default="no_listener")
        return
    # Linux answers a closed TCP port with RST, never ICMP: an ICMP error from the target is a firewall.
    finding["cause"] = "host_firewall"
    if rejected_by_rules:
        rule = culprit_rule(dest, dest_verdict, index.facts(dest).get("firewall") or {})
        finding["culprit"] = rule
        finding["fix"] = firewall_fix(index, dest, rule, flow, "input")
    else:
        finding["culprit"] = {"kind": "firewall", "host": dest, "text": "a firewall on %s rejects with ICMP %s/%s (%s)"
                              % (flow["address"], obs["icmp_type"], obs["icmp_code"], obs["icmp_name"])}
        finding["fix"] = manual("find the rule on %s that rejects %s/%s with %s" % (
            dest or flow["address"], flow["port"], proto, obs["icmp_name"]), dest)
        if dest_verdict is None:
            conflicts.append("no firewall facts from %s: the rejecting rule cannot be named" % (dest or flow["address"]))


def _listener_cause(ev, default):
    finding, flow, dest, lmatch = ev.finding, ev.flow, ev.dest, ev.lmatch
    spec = "%s/%s" % (flow["port"], flow["protocol"])
    if lmatch is None:
        finding["cause"] = default
        finding["culprit"] = {"kind": "listener", "host": dest, "text": "nothing accepts %s on %s (no listener facts to say why)"
                              % (spec, flow["address"])}
        finding["fix"] = manual("check the service that should listen on %s on %s" % (spec, dest or flow["address"]), dest)
        return
    lst = listener_brief(lmatch.get("listener"))
    cause = lmatch.get("cause")
    if lmatch.get("accepted"):
        finding["cause"] = "unknown"
        finding["culprit"] = {"kind": "listener", "host": dest, "listener": lst, "text": lmatch.get("reason")}
        return
    finding["cause"] = cause if cause in CAUSES else default
    finding["culprit"] = {"kind": "listener", "host": dest, "listener": lst, "miss": lmatch.get("miss"),
                          "text": lmatch.get("reason")}
    if finding["cause"] == "loopback_only":
        finding["fix"] = manual("make %s listen on %s or 0.0.0.0 instead of %s (port %s)" % (
            (lst or {}).get("process") or "the service", flow["address"], (lst or {}).get("address"), spec), dest)
    elif finding["cause"] == "wrong_address":
        finding["fix"] = manual("make the service listen on %s:%s (%s)" % (flow["address"], flow["port"], lmatch.get("reason")), dest)
    else:
        finding["fix"] = manual("start the service that should listen on %s on %s (nothing listens there)" % (spec, dest), dest)


def _reset(ev):
    finding, index, flow, dest, dest_verdict = ev.finding, ev.index, ev.flow, ev.dest, ev.dest_verdict
    if dest_verdict is not None and dest_verdict.get("verdict") == "reject" and \
            (dest_verdict.get("reply") or {}).get("kind") == "rst":
        finding["cause"] = "host_firewall"
        rule = culprit_rule(dest, dest_verdict, index.facts(dest).get("firewall") or {})
        finding["culprit"] = rule
        finding["fix"] = firewall_fix(index, dest, rule, flow, "input")
        return
    if ev.nat:
        _nat(ev)
        return
    _listener_cause(ev, default="no_listener")


def _nat(ev):
    finding, index, flow, dest, nat = ev.finding, ev.index, ev.flow, ev.dest, ev.nat
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
    finding["fix"] = manual("point the port mapping %s:%s at a port where the service listens%s: %s" % (
        flow["address"], flow["port"], hint, rule.get("text")), dest)


def _silence(ev):
    finding, index, flow, obs, dest = ev.finding, ev.index, ev.flow, ev.obs, ev.dest
    dest_verdict, lmatch, src_verdict, conflicts = ev.dest_verdict, ev.lmatch, ev.src_verdict, ev.conflicts
    path, trace, cloud = ev.path, ev.trace, ev.cloud
    proto = flow["protocol"]
    if obs["rate_limited"]:
        conflicts.append("the probe could not tell silence from a rate-limited ICMP reject (rate_limited)")
    if src_verdict is not None and src_verdict.get("verdict") in ("drop", "reject"):
        finding["cause"] = "source_firewall"
        rule = culprit_rule(flow.get("source"), src_verdict, index.facts(flow.get("source")).get("firewall") or {})
        finding["culprit"] = rule
        finding["fix"] = manual("allow outgoing %s/%s to %s on %s: %s" % (
            flow["port"], proto, flow["address"], flow.get("source"), (rule or {}).get("text")), flow.get("source"))
        return
    for p in path:
        if p["verdict"].get("verdict") in ("drop", "reject"):
            finding["cause"] = "path_block"
            rule = culprit_rule(p["host"], p["verdict"], index.facts(p["host"]).get("firewall") or {})
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
            finding["fix"] = firewall_fix(index, p["host"], rule, flow, "forward")
            return
    # the cloud layers sit in front of the host: a packet they deny never reaches its firewall
    denied = [c for c in cloud if c.get("verdict") in ("drop", "deny", "reject")]
    if denied:
        finding["cause"] = "security_group"
        finding["culprit"] = cloud_culprit(denied[0])
        finding["fix"] = cloud_fix(denied[0], flow)
        if dest_verdict is not None and dest_verdict.get("verdict") in ("drop", "reject"):
            conflicts.append("%s's own firewall would drop it too, once the cloud lets it through: %s" % (
                dest, dest_verdict.get("reason")))
        return
    if dest_verdict is not None and dest_verdict.get("verdict") in ("drop", "reject"):
        finding["cause"] = "host_firewall"
        rule = culprit_rule(dest, dest_verdict, index.facts(dest).get("firewall") or {})
        finding["culprit"] = rule
        finding["fix"] = firewall_fix(index, dest, rule, flow, "input")
        return
    if lmatch and lmatch.get("cause") == "listen_backlog_full":
        finding["cause"] = "listen_backlog_full"
        finding["culprit"] = {"kind": "listener", "host": dest, "listener": listener_brief(lmatch.get("listener")),
                              "text": lmatch.get("reason")}
        finding["fix"] = manual("the service on %s does not accept() fast enough: raise its backlog "
                                "(and net.core.somaxconn) or fix the service" % dest, dest)
        return
    if proto == "udp" and obs["state"] == "open|filtered" and lmatch and lmatch.get("accepted") \
            and (dest_verdict is None or dest_verdict.get("verdict") == "accept"):
        finding["cause"] = "unknown"
        finding["culprit"] = {"kind": "listener", "host": dest, "listener": listener_brief(lmatch.get("listener")),
                              "text": "the datagram is accepted by %s, but the service did not answer the probe" % dest}
        return
    if trace and trace.get("verdict") == "silent_after_hop" and dest_verdict is not None \
            and dest_verdict.get("verdict") == "accept":
        hop = trace.get("blocking_hop") or {}
        finding["cause"] = "path_block"
        finding["culprit"] = {"kind": "hop", "address": hop.get("address"), "ttl": hop.get("ttl"),
                              "text": "packets die after hop %s (%s); %s's own rules accept them" % (
                                  hop.get("ttl"), hop.get("address"), dest)}
        finding["fix"] = manual("find what drops %s/%s after %s" % (flow["port"], proto, hop.get("address")))
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
