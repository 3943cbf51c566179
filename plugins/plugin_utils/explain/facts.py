# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The explainer's view of the saved facts: managed hosts by name and address, and what their
firewall rules say about a packet (evaluated on the facts, with no network).
"""

from __future__ import annotations

import ipaddress

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils.gather import firewall as fw_info
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import model as rules_model
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator


class HostIndex(object):
    """Managed hosts by name and by address, with their rulesets compiled once; ``flows``: the flows
    being explained, and ``cache`` what is computed once for all of them (verify's shared trials)."""

    def __init__(self, hosts, flows=None):
        self.hosts = hosts or {}
        self.flows = flows or []
        self.cache = {}
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


def _arrives_on(index, host, peer):
    """:func:`_in_interface` of ``host``'s facts, found once per (host, peer) for all the flows being explained."""
    if not isinstance(peer, str):
        return _in_interface(index.facts(host), peer)
    found = index.cache.setdefault("in_interface", {})
    if (host, peer) not in found:
        found[(host, peer)] = _in_interface(index.facts(host), peer)
    return found[(host, peer)]


def address_family(address):
    try:
        return "ipv6" if ipaddress.ip_address(address).version == 6 else "ipv4"
    except ValueError:
        raise InputError("invalid address %r in a flow" % (address,))


EPHEMERAL_SPORT = 40000


def flow_packet(flow):
    """The packet a flow's probe sends, as the evaluator takes it."""
    family = address_family(flow["address"])
    return {"family": family, "proto": flow["protocol"],
            "src": flow.get("source_address") or ("0.0.0.0" if family == "ipv4" else "::"),
            "dst": flow["address"], "sport": EPHEMERAL_SPORT, "dport": int(flow["port"])}


def prepared_packet(index, host, flow, path):
    """:func:`flow_packet` with the interface it arrives on at ``host`` filled in (input, forward)."""
    pkt = flow_packet(flow)
    if path in ("input", "forward"):
        iif = _arrives_on(index, host, pkt["src"])
        if iif:
            pkt["iif"] = iif
    return pkt


def evaluate(index, host, packet, path):
    ev, err = index.evaluator(host)
    if ev is None:
        return None if err is None else {"verdict": "indeterminate", "reason": "firewall facts of %s: %s" % (host, err)}
    facts = index.facts(host)
    pkt = dict(packet)
    if path in ("input", "forward") and "iif" not in pkt:
        iif = _arrives_on(index, host, packet["src"])
        if iif:
            pkt["iif"] = iif
    fw = facts.get("firewall") or {}
    try:
        if fw.get("firewalld") or fw.get("ufw"):
            # firewall_info's own answer: adds the firewalld zone and the ufw rule number or policy
            facts_fw = dict(fw, local_addresses=fw.get("local_addresses") or _addresses(facts) or None)
            # the ruleset compiled once per host (index.evaluator), not once per packet
            return fw_info.evaluate_packets(facts_fw, [dict(pkt, path=path)], evaluator=ev if "tables" not in fw else None)[0]
        return ev.evaluate(pkt, path=path, local_addresses=_addresses(facts) or None)
    except NetdiagError as exc:
        return {"verdict": "indeterminate", "reason": str(exc)}
