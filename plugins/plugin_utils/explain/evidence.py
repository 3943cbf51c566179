# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the explainer gathers for one flow: the observation on the wire (:func:`observed`), what
the rules and listeners predict (:func:`predicted_wire`), the evidence briefs, and
:class:`Evidence`, everything the per-case decisions of causes.py read and the finding they build.
"""

from __future__ import annotations

from ansible_collections.netdiag.reachability.plugins.module_utils.gather.routes import lookup
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.facts import evaluate


# --------------------------------------------------------------------------- observation

def observed(probe, address):
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
        "local_errno": reply.get("local_errno"),
        "neighbour": reply.get("neighbour"),          # the source's neighbour entry of an on-link address: FAILED
        "neighbour_dev": reply.get("neighbour_dev"),
        "local_discards": probe.get("local_discards"),   # the source discarded its own packets during the probe
    }


def predicted_wire(verdict, listener_match, protocol):
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


def wire_text(obs):
    if obs["reply"] == "syn-ack" or obs["state"] == "open":
        return "open"
    if obs["reply"] == "rst":
        return "rst"
    if obs["reply"] == "icmp":
        return "icmp %s/%s" % (obs["icmp_type"], obs["icmp_code"])
    if obs["reply"] is None:
        return "silence"
    return obs["reply"]


def brief(verdict):
    if verdict is None:
        return None
    rule = verdict.get("rule") or {}
    return {"verdict": verdict.get("verdict"), "reply": verdict.get("reply"), "policy": bool(verdict.get("policy")),
            "rule": {k: rule.get(k) for k in ("backend", "family", "table", "chain", "handle", "line", "text")} if rule else None,
            "reason": verdict.get("reason"), "nat": verdict.get("nat")}


def listener_brief(lst):
    if not lst:
        return None
    return {k: lst.get(k) for k in ("protocol", "address", "port", "scope", "process", "pids")}


def route_path(index, source, address, limit=16):
    """The managed hosts a packet from ``source`` to ``address`` crosses, by their own routes:
    ``[(host, gateway address)]`` in order, and the gateway where the walk leaves what is managed
    (None when it reaches the address's subnet or the routes are not known).  Walked once per
    (source, address) for all the flows being explained (the facts do not change meanwhile)."""
    walked = index.cache.setdefault("route_path", {})
    key = (source, address, limit)
    if not all(isinstance(k, (str, int, type(None))) for k in key):
        return _route_path(index, source, address, limit)
    if key not in walked:
        walked[key] = _route_path(index, source, address, limit)
    hops, edge = walked[key]
    return list(hops), edge


def _route_path(index, source, address, limit):
    hops = []
    current = source
    seen = {source}
    for _i in range(limit):
        route = lookup((index.facts(current) or {}).get("routes"), address) if current else None
        if route is None or not route.get("gateway") or route.get("type") != "unicast":
            return hops, None
        name = index.name_of(route["gateway"])
        if name is None:
            return hops, route["gateway"]
        if name in seen:
            return hops, None
        seen.add(name)
        hops.append((name, route["gateway"]))
        current = name
    return hops, None


def path_verdicts(index, flow, packet, trace, dest):
    """Forward-path verdicts of the managed hosts on the path: those the trace went through, and
    those the hosts' own routes lead to (a trace may be silent: rate-limited ICMP, no trace)."""
    out = []
    seen = set()
    candidates = [(index.name_of(hop.get("address")), hop.get("ttl"), hop.get("address"))
                  for hop in (trace or {}).get("hops") or []]
    walked, _edge = route_path(index, flow.get("source"), flow["address"])
    candidates += [(name, None, gw) for name, gw in walked]
    for name, ttl, address in candidates:
        if not name or name == dest or name == flow.get("source") or name in seen:
            continue
        seen.add(name)
        verdict = evaluate(index, name, packet, "forward")
        if verdict is not None:
            out.append({"host": name, "ttl": ttl, "address": address, "verdict": verdict})
    return out


# --------------------------------------------------------------------------- the gathered evidence

class Evidence(object):
    """Everything gathered for one flow, handed to the case functions as one object.

    ``flow`` the input flow; ``index`` the :class:`~.facts.HostIndex`; ``obs`` the observation
    (:func:`observed`); ``dest``/``dest_facts`` the destination host name and its facts;
    ``dest_verdict``/``src_verdict`` what the destination's input and the source's output rules say
    (None without facts); ``lmatch`` the listener match (None without listener facts);
    ``path`` the forward verdicts of managed hops; ``trace`` the trace result; ``cloud`` the
    cloud verdicts of this flow; ``nat`` the destination's NAT mapping; ``conflicts`` the list of
    disagreements and ``finding`` the finding being built (both filled in by the case functions).
    """

    __slots__ = ("flow", "index", "obs", "dest", "dest_facts", "dest_verdict", "lmatch", "src_verdict",
                 "path", "trace", "cloud", "nat", "conflicts", "finding")

    def __init__(self, flow, index, obs, dest, dest_facts, dest_verdict, lmatch, src_verdict, path, trace, cloud, nat,
                 conflicts, finding):
        self.flow = flow
        self.index = index
        self.obs = obs
        self.dest = dest
        self.dest_facts = dest_facts
        self.dest_verdict = dest_verdict
        self.lmatch = lmatch
        self.src_verdict = src_verdict
        self.path = path
        self.trace = trace
        self.cloud = cloud
        self.nat = nat
        self.conflicts = conflicts
        self.finding = finding
