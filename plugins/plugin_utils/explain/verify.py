# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every proposed firewall fix is tried on the saved facts first: the accept rule the fix would
add is inserted where the fix puts it (before the blocking rule, in a firewalld zone's allow
chain, in ufw's user chain) into a copy of the host's loaded ruleset, and the flow's packet is
evaluated again.  :func:`check` says whether the packet then passes, and if not, what still
blocks it.

Compiling that copy costs as much as compiling the host's whole ruleset, once per flow.  So the
flows whose fix goes to the same place share one trial (:func:`_shared_trial`): the rule
inserted there accepts every packet of the report's flows of that protocol and family (their
ports, destination and source addresses), not only this flow's.  Walked by this flow's packet, it
is the same walk as with the flow's own rule, as long as nothing rewrote the packet on the way
(the rule matches the packet either way); when a DNAT did, or the shared trial cannot be built,
the flow gets its own trial, as before.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import model as rules_model
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.facts import prepared_packet, _addresses


def _ruleset_of(fw_facts):
    fw_facts = fw_facts or {}
    return fw_facts.get("ruleset") if "tables" not in fw_facts else fw_facts


def _where(open_ports, fw_facts):
    """(table predicate, chain name, index or None for the end, before handle) for the fix."""
    backend = open_ports.get("backend")
    if backend == "firewalld":
        zone = open_ports["zone"]
        fwd_backend = ((fw_facts or {}).get("firewalld") or {}).get("backend") or "nftables"
        if fwd_backend == "iptables":
            return (lambda t: t["name"] == "filter" and t["backend"].startswith("iptables")), "IN_%s_allow" % zone, 0, None
        return (lambda t: t["name"] == "firewalld"), "filter_IN_%s_allow" % zone, 0, None
    if backend == "ufw":
        return (lambda t: t["name"] == "filter" and t["backend"].startswith("iptables")), "ufw-user-input", None, None
    if backend == "nftables":
        fam, table = open_ports.get("family"), open_ports.get("table")
        return ((lambda t: t["backend"] == "nftables" and t["name"] == table and t["family"] == fam),
                open_ports.get("chain"), None if open_ports.get("before_handle") is None else -1,
                open_ports.get("before_handle"))
    if backend and backend.startswith("iptables"):
        table = open_ports.get("table") or "filter"
        pos = open_ports.get("position")
        return ((lambda t: t["backend"] == backend and t["name"] == table), open_ports.get("chain"),
                None if pos is None else pos - 1, None)
    return None


def _accept_rule(flow, path, source=None):
    family = "ipv6" if ":" in flow["address"] else "ipv4"
    matches = [{"key": "proto", "negate": False, "values": [flow["protocol"]]},
               {"key": "dport", "negate": False, "values": [int(flow["port"])],
                "requires": {"family": family, "proto": [flow["protocol"]]}}]
    if path in ("forward", "output"):
        matches.append({"key": "dst", "negate": False, "values": [flow["address"]]})
    if source:
        matches.append({"key": "src", "negate": False, "values": [source]})
    return {"matches": matches, "statements": [], "verdict": {"kind": "accept"},
            "origin": {"backend": None, "family": None, "table": None, "chain": None, "handle": None,
                       "text": "(the proposed fix)"}}


def check(index, host, fix, flow, path):
    """``{"passes": bool|None, "after": verdict|None, "reason": str}`` for ``fix`` on ``host``.

    ``passes`` is None when the fix cannot be tried on the facts (no ruleset, the chain it adds
    to is not in the loaded ruleset)."""
    open_ports = (fix or {}).get("open_ports")
    facts = index.facts(host)
    ruleset = _ruleset_of(facts.get("firewall"))
    if not open_ports or not ruleset or not flow.get("source_address"):
        return {"passes": None, "after": None, "reason": "no ruleset or no source address to try the fix on"}
    where = _where(open_ports, facts.get("firewall"))
    if where is None:
        return {"passes": None, "after": None, "reason": "the fix's layer is not modelled"}
    pick, chain_name, index_in_chain, before_handle = where
    target = None
    for ti, table in enumerate(ruleset.get("tables", [])):
        if pick(table):
            for ci, chain in enumerate(table.get("chains", [])):
                if chain.get("name") == chain_name:
                    target = (ti, ci, chain)
                    break
        if target is not None:
            break
    if target is None:
        return {"passes": None, "after": None, "reason": "chain %s is not in the loaded ruleset" % chain_name}
    ti, ci, chain = target
    source = open_ports.get("source")
    rule = _accept_rule(flow, path, source)
    rules = chain["rules"]
    if before_handle is not None:
        pos = next((i for i, r in enumerate(rules) if (r.get("origin") or {}).get("handle") == before_handle), len(rules))
    elif index_in_chain is None:
        pos = len(rules)
    else:
        pos = min(max(index_in_chain, 0), len(rules))
    after = None
    try:
        shared = _shared_trial(index, host, ruleset, (ti, ci, pos), flow, path, source)
        if shared is not None:
            after = shared.evaluate(prepared_packet(index, host, flow, path), path=path,
                                    local_addresses=_addresses(facts) or None)
    except NetdiagError:
        after = None   # the flow's own trial below says what is wrong
    if after is None or after.get("nat") is not None:
        try:
            evaluator = Evaluator(rules_model.from_dict(_with_rule(ruleset, (ti, ci, pos), rule)))
            packet = prepared_packet(index, host, flow, path)
            after = evaluator.evaluate(packet, path=path, local_addresses=_addresses(facts) or None)
        except NetdiagError as exc:
            return {"passes": None, "after": None, "reason": "the fix could not be tried on the facts: %s" % exc}
    passes = after.get("verdict") == "accept"
    return {"passes": passes, "after": after,
            "reason": "with the fix the rules accept it" if passes else
            "with the fix the rules still say %s: %s" % (after.get("verdict"), after.get("reason"))}


def _with_rule(ruleset, place, rule):
    """A copy of ``ruleset`` with ``rule`` inserted at ``place`` (table, chain, position); only the
    containers on the way to that chain are copied (neither the model check nor the evaluator
    changes what they are given, apart from the top level's defaults)."""
    ti, ci, pos = place
    tables = list(ruleset["tables"])
    chains = list(tables[ti]["chains"])
    rules = list(chains[ci]["rules"])
    rules.insert(pos, rule)
    chains[ci] = dict(chains[ci], rules=rules)
    tables[ti] = dict(tables[ti], chains=chains)
    return dict(ruleset, tables=tables)


TRIALS_KEPT = 32   # compiled shared trials kept per report (the flows of one host mostly come one after the other)


def _shared_trial(index, host, ruleset, place, flow, path, source):
    """The compiled trial whose inserted rule accepts the packets of every flow of this protocol and
    family (see the module docstring), or None when this flow's packet is not among them."""
    proto, family = flow["protocol"], "ipv6" if ":" in flow["address"] else "ipv4"
    if proto not in ("tcp", "udp") or not isinstance(flow["address"], str) or (source and not isinstance(source, str)):
        return None
    values = _flow_values(index).get((family, proto))
    if values is None:
        return None
    ports, dsts, srcs = values
    if int(flow["port"]) not in ports or flow["address"] not in dsts or \
            (source and (source != flow.get("source_address") or source not in srcs)):
        return None
    trials = index.cache.setdefault("verify_trials", OrderedDict())
    key = (host, place, path, family, proto, bool(source))
    if key in trials:
        trials.move_to_end(key)
        return trials[key]
    matches = [{"key": "proto", "negate": False, "values": [proto]},
               {"key": "dport", "negate": False, "values": sorted(ports), "requires": {"family": family, "proto": [proto]}}]
    if path in ("forward", "output"):
        matches.append({"key": "dst", "negate": False, "values": sorted(dsts)})
    if source:
        matches.append({"key": "src", "negate": False, "values": sorted(srcs)})
    rule = dict(_accept_rule(flow, path, source), matches=matches)
    try:
        trial = Evaluator(rules_model.from_dict(_with_rule(ruleset, place, rule)))
    except NetdiagError:
        trial = None
    trials[key] = trial
    if len(trials) > TRIALS_KEPT:
        trials.popitem(last=False)
    return trial


def _flow_values(index):
    """{(family, proto): (ports, destination addresses, source addresses)} of the index's flows (valid values only)."""
    if "verify_values" not in index.cache:
        out = {}
        for f in index.flows:
            if not isinstance(f, dict) or f.get("protocol") not in ("tcp", "udp"):
                continue   # only TCP and UDP fixes share a trial; a malformed flow gets its own error when explained
            try:
                port, dst = int(f["port"]), ipaddress.ip_address(f["address"])
            except (KeyError, TypeError, ValueError, OverflowError):
                continue
            if not 0 <= port <= 65535 or str(dst) != f["address"]:
                continue
            ports, dsts, srcs = out.setdefault(("ipv6" if dst.version == 6 else "ipv4", f["protocol"]), (set(), set(), set()))
            ports.add(port)
            dsts.add(f["address"])
            try:
                if str(ipaddress.ip_address(f.get("source_address"))) == f.get("source_address"):
                    srcs.add(f["source_address"])
            except ValueError:
                pass
        index.cache["verify_values"] = out
    return index.cache["verify_values"]
