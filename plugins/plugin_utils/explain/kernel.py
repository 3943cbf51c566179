# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel as witness (rank 2, below the wire, above the ruleset): what ``kernel_trace`` saw on
the destination and the managed routers while the source probed again.

:func:`witness` reads one host's trace for a flow's packet; :func:`apply` runs after the case
functions of causes.py and lets the kernel decide where it names more than they had: the rule
that dropped the packet (which outranks the evaluator's answer, with a conflict when they
differ), a packet that entered a host and was discarded by its routing decision, a packet the
destination's rules accepted, or one that never arrived.
"""

from __future__ import annotations

from ansible_collections.netdiag.reachability.plugins.module_utils.gather.routes import DISCARDING, lookup
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.evidence import route_path
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.facts import evaluate, prepared_packet
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.fixes import culprit_rule, firewall_fix, manual


def _packet_key(flow):
    return (flow.get("source_address"), flow["address"], flow["protocol"], int(flow["port"]))


def witness(index, host, flow):
    """What ``host``'s kernel trace says of the flow's packet: None when the host did not trace it,
    else ``{host, seen, verdict, decided_by, reached, iif, window_expired}``."""
    if not host or flow["protocol"] not in ("tcp", "udp") or not flow.get("source_address"):
        return None
    kt = index.facts(host).get("kernel_trace")
    if not isinstance(kt, dict) or kt.get("error"):
        return None
    key = _packet_key(flow)
    armed = [(p.get("src"), p.get("dst"), p.get("protocol"), p.get("port")) for p in kt.get("packets") or []]
    if key not in armed:
        return None
    records = [r for r in kt.get("traces") or []
               if (r.get("src"), r.get("dst"), r.get("protocol"), r.get("port")) == key]
    neigh = [n for n in kt.get("neighbours") or [] if n.get("address") == flow["address"]]
    out = {"host": host, "seen": bool(records), "verdict": None, "decided_by": None, "reached": None, "iif": None,
           "neighbour": neigh[0] if neigh else None,
           "window_expired": bool(kt.get("window_expired")), "legacy_rules": bool(kt.get("legacy_rules"))}
    if records:
        dropped = [r for r in records if r.get("verdict") == "drop"]
        rec = dropped[0] if dropped else records[0]
        out.update(verdict=rec.get("verdict"), decided_by=rec.get("decided_by"), reached=rec.get("reached"),
                   iif=rec.get("iif"))
        if not dropped and any(r.get("reached") == "forward" for r in records):
            out["reached"] = "forward"
    return out


def _ruleset(index, host):
    fw = index.facts(host).get("firewall") or {}
    return fw.get("ruleset") if "tables" not in fw else fw


def kernel_verdict(index, host, decided, evaluator_verdict=None):
    """The kernel's dropping event as a verdict the culprit code takes: the gathered rule it names
    (found by handle, or by position for rules read with iptables-save), or the chain's policy."""
    if evaluator_verdict and same_rule(index, host, evaluator_verdict, decided):
        return evaluator_verdict
    for table in (_ruleset(index, host) or {}).get("tables") or []:
        if table.get("family") != decided.get("family") or table.get("name") != decided.get("table"):
            continue
        for chain in table.get("chains") or []:
            if chain.get("name") != decided.get("chain"):
                continue
            chain_origin = {"backend": table.get("backend"), "family": table.get("family"), "table": table.get("name"),
                            "chain": chain.get("name")}
            if decided.get("kind") == "policy":
                return {"verdict": "drop", "policy": True, "rule": None, "chain": chain_origin,
                        "reason": "policy drop of chain %s (kernel trace)" % chain.get("name")}
            rules = chain.get("rules") or []
            found = [r for r in rules if (r.get("origin") or {}).get("handle") == decided.get("handle")]
            pos = decided.get("position")
            if not found and pos and (table.get("backend") or "").startswith("iptables") and 0 < pos <= len(rules):
                found = [rules[pos - 1]]
            if found:
                rule = found[0]
                kind = (rule.get("verdict") or {}).get("kind")
                return {"verdict": "reject" if kind == "reject" else "drop", "rule": rule.get("origin"),
                        "reason": "kernel trace: %s" % (rule.get("origin") or {}).get("text")}
    # not in the gathered facts (the ruleset changed since, or it was not read): the kernel's own text
    origin = {"backend": "nftables", "family": decided.get("family"), "table": decided.get("table"),
              "chain": decided.get("chain"), "handle": decided.get("handle"), "text": decided.get("text")}
    if decided.get("kind") == "policy":
        return {"verdict": "drop", "policy": True, "rule": None, "chain": origin,
                "reason": "policy drop of chain %s (kernel trace)" % decided.get("chain")}
    verdict = "reject" if "reject" in (decided.get("text") or "") else "drop"
    return {"verdict": verdict, "rule": origin, "reason": "kernel trace: %s" % decided.get("text")}


def same_rule(index, host, verdict, decided):
    """Whether an evaluator verdict names the rule (or chain policy) the kernel names."""
    if not verdict or verdict.get("verdict") not in ("drop", "reject") or not decided:
        return False
    rule = verdict.get("rule")
    if decided.get("kind") == "policy":
        ch = verdict.get("chain") or {}
        return rule is None and (ch.get("family"), ch.get("table"), ch.get("chain")) == (
            decided.get("family"), decided.get("table"), decided.get("chain"))
    if not rule or (rule.get("family"), rule.get("table"), rule.get("chain")) != (
            decided.get("family"), decided.get("table"), decided.get("chain")):
        return False
    if rule.get("handle") is not None:
        return rule.get("handle") == decided.get("handle")
    return decided.get("position") is not None and _chain_position(index, host, rule) == decided["position"]


def _chain_position(index, host, origin):
    for table in (_ruleset(index, host) or {}).get("tables") or []:
        if (table.get("family"), table.get("name")) != (origin.get("family"), origin.get("table")):
            continue
        for chain in table.get("chains") or []:
            if chain.get("name") == origin.get("chain"):
                for i, r in enumerate(chain.get("rules") or []):
                    if r.get("origin") == origin:
                        return i + 1
    return None


def _describe(decided):
    if decided.get("kind") == "policy":
        return "policy drop of %s %s %s" % (decided.get("family"), decided.get("table"), decided.get("chain"))
    return "%s %s %s handle %s: %s" % (decided.get("family"), decided.get("table"), decided.get("chain"),
                                       decided.get("handle"), decided.get("text"))


def _traced_hosts(ev):
    """(host, path) in the order the packet crosses them: managed routers, then the destination."""
    index, flow = ev.index, ev.flow
    order = []
    walked, _edge = route_path(index, flow.get("source"), flow["address"])
    names = [index.name_of(h.get("address")) for h in (ev.trace or {}).get("hops") or []]
    for name in [n for n, _gw in walked] + names + [p["host"] for p in ev.path]:
        if name and name not in (ev.dest, flow.get("source")) and (name, "forward") not in order:
            order.append((name, "forward"))
    if ev.dest:
        order.append((ev.dest, "input"))
    return order


def apply(ev, evidence):
    """Let the kernel's account decide where it is the strongest evidence (see the module docstring)."""
    if ev.obs.get("state") == "open":
        return
    seen = []
    for host, path in _traced_hosts(ev):
        w = witness(ev.index, host, ev.flow)
        if w is not None:
            seen.append((host, path, w))
    if not seen:
        return
    evidence["kernel"] = []
    for h, p, w in seen:
        entry = {"host": h, "path": p, "seen": w["seen"], "verdict": w["verdict"], "reached": w["reached"],
                 "rule": w["decided_by"], "window_expired": w["window_expired"]}
        if w["legacy_rules"]:
            entry["note"] = "%s also has iptables-legacy rules, which the kernel trace cannot see: only a traced drop counts" % h
        evidence["kernel"].append(entry)
    finding = ev.finding
    if finding["cause"] in ("source_firewall",) or (finding["cause"] == "no_route" and finding["decided_by"] == "wire"):
        return  # the packet never left the source: nothing downstream could see it
    for host, path, w in seen:
        if w["seen"] and w["verdict"] == "drop" and w["decided_by"]:
            _kernel_drop(ev, host, path, w)
            return
    # what the kernel did not see is evidence only where it sees every rule: iptables-legacy rules
    # drop packets the trace shows as accepted by nothing
    seen = [(h, p, w) for h, p, w in seen if not w["legacy_rules"]]
    for host, path, w in seen:
        if w["seen"] and w["reached"] is None:
            _discarded_by_routing(ev, host, path, w)
            return
        if w["seen"] and path == "forward" and w["reached"] == "input":
            return  # a router that is the packet's end (a DNAT'ing host): the destination's rules speak
    dest = [(h, w) for h, p, w in seen if p == "input"]
    if not dest:
        _absent_host(ev, seen)
        return
    host, w = dest[0]
    if w["seen"] and w["reached"] in ("input", "forward"):
        if finding["cause"] in ("host_firewall",) and finding["decided_by"] in ("ruleset", None):
            _contradicted(ev, "the kernel shows %s's input rules let the packet through (it reached the input hook's "
                          "end), yet the evaluator said %s" % (host, (ev.dest_verdict or {}).get("verdict")))
        return
    # "never arrived" needs proof that the source did send again while the trace ran: a router on the
    # way forwarded it, or the destination saw another of this source's probes
    sent = any(p == "forward" and x["seen"] for _h, p, x in seen) or any(
        r.get("src") == ev.flow.get("source_address")
        for r in (ev.index.facts(host).get("kernel_trace") or {}).get("traces") or [])
    if not w["seen"] and sent and not w["window_expired"] and finding["decided_by"] in ("ruleset", None):
        if finding["cause"] in ("host_firewall", "listen_backlog_full", "unknown", "no_listener"):
            _contradicted(ev, "the kernel of %s did not see the packet while the source probed again: it was lost "
                          "before it reached %s" % (host, host), never_arrived=host)


def _kernel_drop(ev, host, path, w):
    finding, index, flow = ev.finding, ev.index, ev.flow
    decided = w["decided_by"]
    if finding["decided_by"] == "wire":
        # the wire outranks the kernel: the kernel only names the rule of the host the wire points at
        wire_host = ev.dest if ev.obs.get("sender_is_target") else index.name_of(ev.obs.get("sender"))
        if wire_host != host:
            ev.conflicts.append("the kernel of %s traced a drop (%s), but the wire shows an answer from %s: the wire "
                                "is followed" % (host, _describe(decided), ev.obs.get("sender")))
            return
    evaluator = ev.dest_verdict if path == "input" else next(
        (p["verdict"] for p in ev.path if p["host"] == host), None)
    if evaluator is None and path == "forward":
        evaluator = evaluate(index, host, prepared_packet(index, host, flow, "forward"), "forward")
    verdict = kernel_verdict(index, host, decided, evaluator)
    rule = culprit_rule(host, verdict, index.facts(host).get("firewall") or {})
    cause = "host_firewall" if path == "input" else "path_block"
    agrees = same_rule(index, host, evaluator, decided)
    if not agrees:
        said = "no firewall facts" if evaluator is None else "%s (%s)" % (evaluator.get("verdict"), evaluator.get("reason"))
        ev.conflicts.append("the kernel traced the packet to %s's %s; the evaluator said %s: the kernel is followed"
                            % (host, _describe(decided), said))
    for c in rule.pop("conflicts", None) or []:
        if c not in ev.conflicts:
            ev.conflicts.append(c)
    if finding["decided_by"] == "wire" and finding["cause"] == cause:
        # the wire decided the cause and the host; the kernel only says which rule, where the evaluator could not
        if agrees:
            return
        if cause == "path_block":
            finding["culprit"] = dict(finding.get("culprit") or {}, rule=rule)
        else:
            finding["culprit"] = rule
        finding["fix"] = firewall_fix(index, host, rule, flow, path)
        return
    if cause == "path_block":
        hop = next((h for h in (ev.trace or {}).get("hops") or [] if index.name_of(h.get("address")) == host), {})
        culprit = {"kind": "hop", "host": host, "address": hop.get("address"), "ttl": hop.get("ttl"), "rule": rule,
                   "text": "%s drops it (kernel trace): %s" % (host, rule.get("text"))}
    else:
        culprit = rule
    finding.update(cause=cause, culprit=culprit, candidates=[],
                   fix=firewall_fix(index, host, rule, flow, path))
    if finding["decided_by"] != "wire":
        finding["decided_by"] = "kernel"


def _rp_filter(facts, iif):
    sysctls = facts.get("sysctls") or {}
    values = [sysctls.get("net.ipv4.conf.all.rp_filter"), sysctls.get("net.ipv4.conf.%s.rp_filter" % iif)]
    values = [int(v) for v in values if isinstance(v, int) or (isinstance(v, str) and v.isascii() and v.isdigit())]
    return max(values) if values else None


def _discarded_by_routing(ev, host, path, w):
    """The packet entered ``host`` and no rule dropped it, yet it reached neither the input nor the
    forward hook: the routing decision discarded it.  Say what the host's facts show can do that."""
    finding, index, flow = ev.finding, ev.index, ev.flow
    facts = index.facts(host)
    sysctls = facts.get("sysctls") or {}
    ipv4 = ":" not in flow["address"]
    src = flow.get("source_address")
    prior = finding.get("culprit")
    finding["decided_by"] = "kernel"
    finding["candidates"] = []
    back = lookup(facts.get("routes"), src) if src else None
    ahead = lookup(facts.get("routes"), flow["address"])
    rp = _rp_filter(facts, w.get("iif")) if ipv4 else None
    forwarding = sysctls.get("net.ipv4.ip_forward" if ipv4 else "net.ipv6.conf.all.forwarding")
    lead = "the kernel of %s saw the packet arrive%s and no rule drop it, yet it reached neither the input nor the " \
           "forward hook: %s's routing decision discarded it" % (host, " on %s" % w["iif"] if w.get("iif") else "", host)
    if path == "forward" and forwarding is not None and str(forwarding) == "0":
        finding["cause"] = "path_block"
        finding["culprit"] = {"kind": "hop", "host": host, "text": "%s; %s does not forward packets (%s = 0)" % (
            lead, host, "net.ipv4.ip_forward" if ipv4 else "net.ipv6.conf.all.forwarding")}
        finding["fix"] = manual("enable forwarding on %s (sysctl -w %s=1), if it is meant to route" % (
            host, "net.ipv4.ip_forward" if ipv4 else "net.ipv6.conf.all.forwarding"), host)
    elif path == "forward" and (ahead is None or ahead.get("type") in DISCARDING):
        finding["cause"] = "no_route"
        finding["culprit"] = {"kind": "route", "host": host, "route": ahead, "text": "%s; %s has %s to %s" % (
            lead, host, "no route" if ahead is None else "a %s route" % ahead.get("type"), flow["address"])}
        finding["fix"] = manual("add a route to %s on %s" % (flow["address"], host), host)
    elif rp and back is not None and w.get("iif") and back.get("dev") and back["dev"] != w["iif"] and rp == 1:
        finding["cause"] = "no_route"
        finding["culprit"] = {"kind": "route", "host": host, "route": back, "text": "%s; strict rp_filter (%s) drops "
                              "it: the route back to %s leaves by %s, not by %s where it arrived" % (
                                  lead, rp, src, back["dev"], w["iif"])}
        finding["fix"] = manual("route %s back through %s on %s, or set rp_filter to 2 (loose) on %s" % (
            src, w["iif"], host, w["iif"]), host)
    elif back is None or back.get("type") in DISCARDING:
        finding["cause"] = "no_route"
        finding["culprit"] = {"kind": "route", "host": host, "route": back, "text": "%s; %s has %s back to %s (rp_filter %s)"
                              % (lead, host, "no route" if back is None else "a %s route" % back.get("type"), src, rp)}
        finding["fix"] = manual("add a route back to %s on %s" % (src, host), host)
    else:
        finding["cause"] = "unknown"
        finding["culprit"] = {"kind": "unknown", "host": host, "text": lead}
        finding["candidates"] = [
            {"host": host, "why": "reverse-path filtering (rp_filter %s) or a policy routing rule" % rp,
             "decide": "ip route get %s from %s iif %s on %s" % (flow["address"], src, w.get("iif") or "IFACE", host)}]
        finding["fix"] = None
        return
    if prior and prior.get("kind") == "firewall":
        ev.conflicts.append("%s named a firewall rule (%s), but the kernel saw no rule drop the packet" % (
            "the evaluator", prior.get("text")))


def _contradicted(ev, why, never_arrived=None):
    finding, index, flow = ev.finding, ev.index, ev.flow
    prior = finding.get("culprit") or {}
    if prior.get("text"):
        ev.conflicts.append("%s; it named %s" % (why, prior.get("text")))
    else:
        ev.conflicts.append(why)
    finding["cause"] = "unknown"
    finding["decided_by"] = "kernel"
    finding["fix"] = None
    finding["culprit"] = {"kind": "unknown", "text": why}
    cands = []
    if never_arrived:
        walked, edge = route_path(index, flow.get("source"), flow["address"])
        for a in [h.get("address") for h in (ev.trace or {}).get("hops") or []] + ([edge] if edge else []):
            if a and a != flow["address"] and index.name_of(a) is None:
                cands.append({"address": a, "cause": "path_block", "why": "a hop on the way whose rules were not read",
                              "decide": "add the device at %s to the inventory (group routers)" % a})
        for name, _gw in walked:
            cands.append({"host": name, "cause": "path_block", "why": "a managed router on the way",
                          "decide": "run the kernel trace with %s traced too (it forwards: group routers)" % name})
    else:
        cands.append({"host": ev.dest, "why": "its rules accept the packet: the reply may be lost, or the service "
                      "does not answer", "decide": "ip route get %s from %s on %s; ss -ltn on %s" % (
                          flow.get("source_address"), flow["address"], ev.dest, ev.dest)})
    finding["candidates"] = cands


_NO_HOST = ("FAILED", "INCOMPLETE")


def _absent_host(ev, seen):
    """A destination no managed host owns, behind a router that forwarded the packet onto the
    destination's own subnet: the router's neighbour table, read right after, says whether any host
    answered there (FAILED or INCOMPLETE: none did)."""
    finding, flow = ev.finding, ev.flow
    if (ev.dest and ev.dest in ev.index.hosts) or finding["decided_by"] == "wire":
        return
    for host, path, w in seen:
        n = w.get("neighbour") or {}
        states = set((n.get("state") or "").split("/"))
        if path == "forward" and w["seen"] and w["reached"] == "forward" and states & set(_NO_HOST):
            prior = finding.get("cause")
            finding.update(cause="host_down", decided_by="kernel", candidates=[], culprit={
                "kind": "hop", "host": host, "address": flow["address"], "neighbour": n,
                "text": "%s forwarded the packet onto %s's subnet (%s) and no host answered its neighbour "
                        "discovery there (%s): there is no host at %s" % (
                            host, flow["address"], n.get("dev"), n.get("state"), flow["address"])})
            finding["fix"] = manual("check that %s is up and has its address (%s cannot reach it on %s)" % (
                flow["address"], host, n.get("dev")))
            if prior not in ("unknown", "host_down"):
                ev.conflicts.append("the earlier answer was %s; %s's neighbour table shows no host at %s" % (
                    prior, host, flow["address"]))
            return
