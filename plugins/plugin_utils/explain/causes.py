# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decision: one cause, culprit and fix per flow (:func:`explain_flow`), from the gathered
:class:`~.evidence.Evidence`, one function per kind of answer on the wire.
"""

from __future__ import annotations

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import CAUSES
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.routes import DISCARDING, lookup
from ansible_collections.netdiag.reachability.plugins.plugin_utils.listener_match import match_listener
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.facts import address_family, evaluate
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.evidence import (
    Evidence, brief, listener_brief, observed, path_verdicts, predicted_wire, route_path, wire_text)
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.fixes import culprit_rule, firewall_fix, manual
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain import kernel
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
    finding = {"cause": "unknown", "culprit": None, "fix": None, "decided_by": None, "candidates": []}

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
    if state is None:
        _not_probed(ev)
    elif state == "open":
        finding["cause"] = "ok"
        finding["decided_by"] = "wire"
        if lmatch and lmatch.get("cause") == "listen_backlog_full":
            evidence["note"] = lmatch["reason"]
    elif obs["sender"] == "local":
        _refused_locally(ev)
    elif state == "unreachable":
        finding["cause"] = "host_down"
        finding["decided_by"] = "wire"
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
    kernel.apply(ev, evidence)

    # Wire vs rules: say so when they disagree
    predicted = predicted_wire(dest_verdict, lmatch, proto) if not nat and state is not None else None
    wire = wire_text(obs)
    if predicted and predicted != wire and not (obs["rate_limited"] and wire == "silence") \
            and finding["cause"] not in ("path_block", "source_firewall", "security_group", "host_down", "no_route"):
        if not (proto == "udp" and wire == "silence" and predicted == "open"):
            conflicts.append("the rules and listeners of %s predict %s, the wire shows %s" % (dest, predicted, wire))
    cloud_denied = [c for c in cloud if c.get("verdict") in ("drop", "deny", "reject")]
    if state == "open" and cloud_denied:
        conflicts.append("the cloud layers deny it (%s), yet the wire shows it open: the probe's path may not cross "
                         "them, or the rules read are not the ones in force" % cloud_denied[0].get("reason"))
    for c in (finding.get("culprit") or {}).pop("conflicts", None) or []:
        if c not in conflicts:
            conflicts.append(c)
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

def _not_probed(ev):
    """No probe result, so nothing on the wire: the source's probe failed, or the source was not
    reached.  A drop or reject in the destination's rules still names the rule (rank: ruleset), said
    to be without the wire; anything else stays unknown, naming what failed."""
    finding, flow, dest, dest_verdict = ev.finding, ev.flow, ev.dest, ev.dest_verdict
    src = flow.get("source") or "the source"
    error = (flow.get("probe") or {}).get("error")
    what = ("the probe from %s failed: %s" % (src, error) if error
            else "%s sent no probe (it was not reached, or its probe did not run)" % src)
    if dest_verdict is not None and dest_verdict.get("verdict") in ("drop", "reject"):
        finding["cause"] = "host_firewall"
        finding["decided_by"] = "ruleset"
        rule = culprit_rule(dest, dest_verdict, ev.index.facts(dest).get("firewall") or {})
        finding["culprit"] = rule
        finding["fix"] = firewall_fix(ev.index, dest, rule, flow, "input")
        ev.conflicts.append("%s: decided by the rules of %s alone, with nothing seen on the wire" % (what, dest))
        return
    finding["culprit"] = {"kind": "unknown", "text": what}
    finding["candidates"] = [{"host": src, "why": what,
                              "decide": "run the diagnosis again once %s answers (ansible %s -m ansible.builtin.ping)"
                                        % (src, src)}] + _silence_candidates(ev)


def _refused_locally(ev):
    """The source's own stack refused the send: no packet left it.  That is wire-level evidence
    about the source (never a hop): an output rule (EPERM/EACCES) or no route."""
    finding, index, flow, obs, src_verdict = ev.finding, ev.index, ev.flow, ev.obs, ev.src_verdict
    src = flow.get("source")
    err = obs.get("local_errno") or ("ENETUNREACH" if obs["icmp_code"] == 0 else
                                     "EHOSTUNREACH" if obs["icmp_code"] == 1 else "EPERM")
    finding["decided_by"] = "wire"
    spec = "%s/%s" % (flow["port"], flow["protocol"])
    if err == "EHOSTUNREACH" and obs.get("neighbour") in ("FAILED", "INCOMPLETE"):
        # on the source's own link, and nothing answered its ARP / neighbour solicitation (the probe asked
        # twice): no host has that address there now, which is not a missing route
        how = "neighbour discovery" if ":" in str(flow["address"]) else "ARP"
        dev = obs.get("neighbour_dev")
        on = " on %s" % dev if dev else ""
        finding["cause"] = "host_down"
        finding["culprit"] = {"kind": "neighbour", "host": src, "address": flow["address"], "dev": dev,
                              "state": obs["neighbour"],
                              "text": "%s got no answer to %s for %s%s (its neighbour entry is %s): no host answers "
                                      "at that address on the link" % (
                                          src or "the source", how, flow["address"], on, obs["neighbour"])}
        finding["fix"] = manual("check that %s is up and on the link of %s%s (ip neigh show %s on %s says %s)" % (
            flow["address"], src or "the source", on, flow["address"], src or "the source", obs["neighbour"]), src)
        return
    if err in ("ENETUNREACH", "EHOSTUNREACH"):
        finding["cause"] = "no_route"
        finding["culprit"] = {"kind": "route", "host": src, "text": "%s has no route to %s: the send failed with %s"
                              % (src or "the source", flow["address"], err)}
        finding["fix"] = manual("add a route to %s on %s (ip route get %s shows none)" % (
            flow["address"], src or "the source", flow["address"]), src)
        return
    finding["cause"] = "source_firewall"
    if src_verdict is not None and src_verdict.get("verdict") in ("drop", "reject"):
        rule = culprit_rule(src, src_verdict, index.facts(src).get("firewall") or {})
        finding["culprit"] = rule
        finding["fix"] = firewall_fix(index, src, rule, flow, "output")
        return
    finding["culprit"] = {"kind": "firewall", "host": src, "text": "%s refused to send %s to %s (%s): an output "
                          "firewall rule on %s" % (src or "the source", spec, flow["address"], err, src or "the source")}
    finding["fix"] = manual("find the output rule on %s that refuses %s to %s" % (src or "the source", spec, flow["address"]), src)
    if src_verdict is None:
        ev.conflicts.append("no firewall facts from %s: the refusing rule cannot be named" % (src or "the source"))
    else:
        ev.conflicts.append("the rules of %s as read say %s (%s), yet its stack refused the send (%s); the wire is "
                            "followed" % (src, src_verdict.get("verdict"), src_verdict.get("reason"), err))


def _path_block_by_reject(ev):
    finding, index, flow, obs, trace, path = ev.finding, ev.index, ev.flow, ev.obs, ev.trace, ev.path
    finding["cause"] = "path_block"
    finding["decided_by"] = "wire"
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
    finding["decided_by"] = "wire"
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
        finding["decided_by"] = "ruleset"
        rule = culprit_rule(dest, dest_verdict, index.facts(dest).get("firewall") or {})
        finding["culprit"] = rule
        finding["fix"] = firewall_fix(index, dest, rule, flow, "input")
        return
    if ev.nat:
        _nat(ev)
        return
    if ev.dest is None or ev.dest not in ev.index.hosts:
        if _forwarded_reply(ev):
            return
    finding["decided_by"] = "wire"
    _listener_cause(ev, default="no_listener")


def _forwarded_reply(ev):
    """A reply from the probed address itself whose TTL shows it came from further away than that
    address is: a port mapping on a device we do not manage forwards it.  Inference only, so the
    cause stays unknown; the finding says what it likely is and what would decide."""
    finding, flow, obs, index = ev.finding, ev.flow, ev.obs, ev.index
    ttl = obs.get("ttl")
    if not ttl or not obs.get("sender_is_target"):
        return False
    initial = min(t for t in (64, 128, 255) if t >= ttl)
    hops = initial - ttl
    expected = _hops_to(index, flow)
    if expected is None or hops <= expected:
        return False
    finding["cause"] = "unknown"
    finding["decided_by"] = "inference"
    finding["culprit"] = {"kind": "nat", "address": flow["address"], "likely": True,
                          "text": "likely forwarded: %s answered %s/%s with a reset whose TTL %d says it came %d hop%s "
                                  "from further away than %s is (%d hop%s): a port mapping on %s sends it to a host "
                                  "where nothing listens" % (
                                      flow["address"], flow["port"], flow["protocol"], ttl, hops - expected,
                                      "" if hops - expected == 1 else "s", flow["address"], expected,
                                      "" if expected == 1 else "s", flow["address"])}
    finding["candidates"] = [
        {"cause": "nat", "address": flow["address"],
         "why": "the reply's TTL shows it was forwarded", "decide": "add the device that owns %s to the inventory "
         "(its DNAT rules and the inside host's listeners decide)" % flow["address"]},
        {"cause": "no_listener", "address": flow["address"],
         "why": "a reset says nothing accepted the connection", "decide": "the same"}]
    finding["fix"] = manual("check the port mapping %s:%s on the device that owns %s" % (
        flow["address"], flow["port"], flow["address"]))
    return True


def _hops_to(index, flow):
    """Routers between the flow's source and its address, from the source's own interfaces: 0 when
    the address is on one of the source's subnets, None when the facts cannot say."""
    import ipaddress
    src_facts = index.facts(flow.get("source")) if flow.get("source") else {}
    try:
        addr = ipaddress.ip_address(flow["address"])
    except ValueError:
        return None
    for iface in src_facts.get("interfaces") or []:
        try:
            net = ipaddress.ip_network("%s/%s" % (iface["address"], iface.get("prefix", 32)), strict=False)
        except (KeyError, ValueError):
            continue
        if addr in net and net.prefixlen < net.max_prefixlen:
            return 0
    return None


def _nat(ev):
    finding, index, flow, dest, nat = ev.finding, ev.index, ev.flow, ev.dest, ev.nat
    inside_addr, inside_port = nat.get("dst"), nat.get("dport")
    inside = index.name_of(inside_addr)
    rule = nat.get("rule") or {}
    text = "%s:%s is mapped to %s:%s by %s" % (flow["address"], flow["port"], inside_addr, inside_port, rule.get("text"))
    finding["cause"] = "nat"
    finding["decided_by"] = "ruleset"
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
    if obs.get("local_discards"):
        conflicts.append("%s discarded %d of its own packets on output while it probed (IpOutDiscards): this silence "
                         "may be the source's, not the network's" % (flow.get("source") or "the source", obs["local_discards"]))
    if src_verdict is not None and src_verdict.get("verdict") in ("drop", "reject"):
        finding["cause"] = "source_firewall"
        finding["decided_by"] = "ruleset"
        rule = culprit_rule(flow.get("source"), src_verdict, index.facts(flow.get("source")).get("firewall") or {})
        finding["culprit"] = rule
        finding["fix"] = firewall_fix(index, flow.get("source"), rule, flow, "output")
        return
    for p in path:
        if p["verdict"].get("verdict") in ("drop", "reject"):
            finding["cause"] = "path_block"
            finding["decided_by"] = "ruleset"
            rule = culprit_rule(p["host"], p["verdict"], index.facts(p["host"]).get("firewall") or {})
            hop_addr = p.get("address")
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
        finding["decided_by"] = "ruleset"
        finding["culprit"] = cloud_culprit(denied[0])
        finding["fix"] = cloud_fix(denied[0], flow)
        if dest_verdict is not None and dest_verdict.get("verdict") in ("drop", "reject"):
            conflicts.append("%s's own firewall would drop it too, once the cloud lets it through: %s" % (
                dest, dest_verdict.get("reason")))
        return
    unmanaged = _unmanaged_hops(ev)
    if dest_verdict is not None and dest_verdict.get("verdict") == "reject" and not obs["rate_limited"] and unmanaged:
        # The wire outranks the ruleset: a reject answers, and nothing came back.  With hops on the way
        # that are not managed, the packet may never have reached the destination: do not guess.
        rule = culprit_rule(dest, dest_verdict, index.facts(dest).get("firewall") or {})
        finding["cause"] = "unknown"
        finding["culprit"] = {"kind": "unknown", "text": "%s's rules reject it (%s), which answers, yet nothing came back: "
                              "the packet may be dropped before it reaches %s" % (dest, rule.get("text"), dest)}
        finding["candidates"] = [
            {"address": a, "cause": "path_block", "why": "a hop on the way whose rules were not read",
             "decide": "add the device at %s to the inventory (group routers)" % a} for a in unmanaged] + [
            {"host": dest, "cause": "host_firewall", "rule": rule,
             "why": "its rule rejects it; its answer may have been lost on the way back",
             "decide": "fix the path first, or probe from a host on %s's own subnet" % dest}]
        conflicts.append("%s's rules reject it with %s, but the wire shows silence" % (
            dest, (dest_verdict.get("reply") or {}).get("name") or (dest_verdict.get("reply") or {}).get("kind")))
        return
    if dest_verdict is not None and dest_verdict.get("verdict") in ("drop", "reject"):
        finding["cause"] = "host_firewall"
        finding["decided_by"] = "ruleset"
        rule = culprit_rule(dest, dest_verdict, index.facts(dest).get("firewall") or {})
        finding["culprit"] = rule
        finding["fix"] = firewall_fix(index, dest, rule, flow, "input")
        return
    if lmatch and lmatch.get("cause") == "listen_backlog_full":
        finding["cause"] = "listen_backlog_full"
        finding["decided_by"] = "ruleset"
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
    if _discarded_by_routing(ev):
        return
    # Nothing read names a rule.  A trace that goes silent after a hop is inference (rank 5): it
    # cannot tell a hop that drops from a destination that discards, so it never names a culprit.
    finding["cause"] = "unknown"
    finding["candidates"] = _silence_candidates(ev)
    why = []
    if obs.get("local_discards"):
        src = flow.get("source") or "the source"
        why.append("%s discarded %d of its own packets on output while it probed" % (src, obs["local_discards"]))
        finding["candidates"].insert(0, {
            "host": flow.get("source"), "why": "it discarded %d of its own packets on output during the probe "
            "(IpOutDiscards), so the probe may never have left it" % obs["local_discards"],
            "decide": "dmesg on %s ('neighbor table overflow' means net.ipv4.neigh.default.gc_thresh3 is too low for "
                      "the addresses it talks to), then diagnose again" % src})
    if dest is None or dest not in index.hosts:
        why.append("%s is not a managed host (no facts)" % (dest or flow["address"]))
    elif dest_verdict is None:
        why.append(_unread_firewall(index, dest, flow["address"])["why"].replace("its firewall", "the firewall of %s" % dest, 1))
    if trace and trace.get("reason"):
        why.append(trace["reason"])
    for c in cloud:
        if c.get("verdict") == "indeterminate":
            why.append("cloud layer of %s: %s" % (c.get("interface"), c.get("reason")))
    if flow.get("cloud_error"):
        why.append("the cloud layers could not be read: %s" % flow["cloud_error"])
    if dest_verdict is not None and dest_verdict.get("verdict") == "accept" and lmatch and lmatch.get("accepted"):
        why.append("%s's rules and listener accept it, so what discards it is outside the firewalls read" % dest)
    finding["culprit"] = {"kind": "unknown", "text": "; ".join(why) or "the packets vanish and no layer read explains it"}


def _unmanaged_hops(ev):
    """Addresses of hops between the source and the destination whose rules were not read: hops the
    trace saw that are no managed host, and the gateway where the route walk leaves managed hosts."""
    index, flow = ev.index, ev.flow
    out = []
    for hop in (ev.trace or {}).get("hops") or []:
        a = hop.get("address")
        if a and a != flow["address"] and index.name_of(a) is None and a not in out:
            out.append(a)
    _walked, edge = route_path(index, flow.get("source"), flow["address"])
    if edge and edge not in out:
        out.append(edge)
    return out


def _discarded_by_routing(ev):
    """A host on the way whose own routes discard the packet or its reply (a blackhole, unreachable
    or prohibit route): read from the host, so it decides (rank: ruleset)."""
    finding, index, flow, dest = ev.finding, ev.index, ev.flow, ev.dest
    src_addr = flow.get("source_address")
    checks = []
    if dest and src_addr:
        checks.append((dest, src_addr, "its reply to %s" % src_addr))
    for p in ev.path:
        checks.append((p["host"], flow["address"], "the packet to %s" % flow["address"]))
        if src_addr:
            checks.append((p["host"], src_addr, "the reply to %s" % src_addr))
    for host, toward, what in checks:
        route = lookup(index.facts(host).get("routes"), toward)
        if route is not None and route.get("type") in DISCARDING:
            finding["cause"] = "no_route"
            finding["decided_by"] = "ruleset"
            finding["culprit"] = {"kind": "route", "host": host, "route": route,
                                  "text": "%s discards %s: its route %s is %s" % (
                                      host, what, route.get("dst"), route.get("type"))}
            finding["fix"] = manual("remove or replace the %s route %s on %s (ip route del %s %s)" % (
                route.get("type"), route.get("dst"), host, route.get("type"), route.get("dst")), host,
                ["ip route del %s %s" % (route.get("type"), route.get("dst"))])
            return True
    return False


def _silence_candidates(ev):
    """Who may discard a packet that vanishes, and what would decide, from the hops the trace saw."""
    index, flow, trace, dest, path = ev.index, ev.flow, ev.trace, ev.dest, ev.path
    accepted_by = {p["host"] for p in path if p["verdict"].get("verdict") == "accept"}
    out = []
    hop = (trace or {}).get("blocking_hop") or {}
    if trace and trace.get("verdict") == "silent_after_hop" and hop.get("address"):
        name = index.name_of(hop["address"])
        if name is None:
            out.append({"address": hop["address"], "ttl": hop.get("ttl"),
                        "why": "the last hop that answered the trace (TTL %s); its rules were not read" % hop.get("ttl"),
                        "decide": "add the device at %s to the inventory (group routers) so its forward rules are read"
                                  % hop["address"]})
        elif name in accepted_by:
            out.append({"host": name, "address": hop["address"], "ttl": hop.get("ttl"),
                        "why": "the last hop that answered; its forward rules accept the packet, so only something "
                               "outside its firewall (routing, rp_filter) could drop it",
                        "decide": "ip route get %s from %s on %s" % (
                            flow["address"], flow.get("source_address") or "SOURCE", name)})
    if dest and dest in index.hosts:
        if ev.dest_verdict is not None and ev.dest_verdict.get("verdict") == "accept":
            out.append({"host": dest, "address": flow["address"],
                        "why": "its rules accept the packet; its routing back to the source, rp_filter or a full "
                               "queue may still discard it or its reply",
                        "decide": "ip route get %s from %s on %s, and sysctl net.ipv4.conf.all.rp_filter" % (
                            flow.get("source_address") or "SOURCE", flow["address"], dest)})
        elif ev.dest_verdict is None:
            out.append(_unread_firewall(index, dest, flow["address"]))
    else:
        owner = _subnet_owner(index, flow["address"])
        if owner:
            out.append({"address": flow["address"], "cause": "host_down",
                        "why": "no managed host has this address, and %s's own subnet holds it: there may be no host "
                               "there (%s's ICMP host-unreachable may have been rate-limited)" % (owner, owner),
                        "decide": "ip neigh show %s on %s right after a probe (FAILED or INCOMPLETE: no host)" % (
                            flow["address"], owner)})
        out.append({"address": flow["address"], "why": "not a managed host: its own firewall may drop the packet",
                    "decide": "add %s to the inventory" % flow["address"]})
    return out


def _unread_firewall(index, host, address):
    """The candidate for a managed host whose firewall facts are missing, saying why they are."""
    facts = index.facts(host)
    errors = [e for e in facts.get("gather_errors") or [] if e.startswith("firewall")]
    if errors:
        return {"host": host, "address": address, "why": "its firewall could not be read (%s)" % errors[0],
                "decide": "fix what the read on %s reports, then run the diagnosis again" % host}
    if facts.get("listeners") is None and not facts.get("gather_errors"):
        return {"host": host, "address": address, "why": "its firewall was not read: the host itself was not read "
                                                         "(unreachable from the controller, or its read did not run)",
                "decide": "check that Ansible reaches %s (ansible %s -m ansible.builtin.ping), then run the diagnosis "
                          "again" % (host, host)}
    return {"host": host, "address": address, "why": "its firewall was not read",
            "decide": "run the diagnosis with reachability_read_firewall: true"}


def _subnet_owner(index, address):
    """A gathered host that forwards (a router) with an interface on ``address``'s subnet."""
    import ipaddress
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    for name in sorted(index.hosts):
        facts = index.facts(name)
        if not (facts.get("sysctls") or {}).get("net.ipv4.ip_forward"):
            continue
        for iface in facts.get("interfaces") or []:
            try:
                net = ipaddress.ip_network("%s/%s" % (iface["address"], iface.get("prefix", 32)), strict=False)
            except (KeyError, ValueError):
                continue
            if ip in net and net.prefixlen < net.max_prefixlen:
                return name
    return None
