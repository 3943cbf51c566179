# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every proposed firewall fix is tried on the saved facts first: the accept rule the fix would
add is inserted where the fix puts it (before the blocking rule, in a firewalld zone's allow
chain, in ufw's user chain) into a copy of the host's loaded ruleset, and the flow's packet is
evaluated again.  :func:`check` says whether the packet then passes, and if not, what still
blocks it.
"""

from __future__ import annotations

import copy

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
    trial = copy.deepcopy(ruleset)
    target = None
    for table in trial.get("tables", []):
        if pick(table):
            for chain in table.get("chains", []):
                if chain.get("name") == chain_name:
                    target = chain
                    break
        if target is not None:
            break
    if target is None:
        return {"passes": None, "after": None, "reason": "chain %s is not in the loaded ruleset" % chain_name}
    rule = _accept_rule(flow, path, open_ports.get("source"))
    rules = target["rules"]
    if before_handle is not None:
        pos = next((i for i, r in enumerate(rules) if (r.get("origin") or {}).get("handle") == before_handle), len(rules))
    elif index_in_chain is None:
        pos = len(rules)
    else:
        pos = min(max(index_in_chain, 0), len(rules))
    rules.insert(pos, rule)
    try:
        evaluator = Evaluator(rules_model.from_dict(trial))
        packet = prepared_packet(index, host, flow, path)
        after = evaluator.evaluate(packet, path=path, local_addresses=_addresses(facts) or None)
    except NetdiagError as exc:
        return {"passes": None, "after": None, "reason": "the fix could not be tried on the facts: %s" % exc}
    passes = after.get("verdict") == "accept"
    return {"passes": passes, "after": after,
            "reason": "with the fix the rules accept it" if passes else
            "with the fix the rules still say %s: %s" % (after.get("verdict"), after.get("reason"))}
