# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every firewall layer of a host, in one rule model, and verdicts for packets.

:func:`gather` reads the layers (nftables, iptables legacy/nft v4/v6, firewalld, ufw) and
returns the facts the ``firewall_info`` module returns.  :func:`evaluate_packets` evaluates
packets against such facts -- on the host right after reading, or later on saved facts
(the ``firewall_verdict`` filter).  One implementation for both front ends.

A layer whose reader raises ParseError (garbled output or files) does not stop the others:
it is reported present but ``unreadable`` with the reason in its ``error``.  An unreadable
layer that filters packets itself (nftables, iptables) makes every verdict ``indeterminate``;
an unreadable front end (firewalld, ufw) only loses its own answer, since the rules it loaded
are read from nftables/iptables.
"""

from __future__ import annotations

import ipaddress
import json

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    BackendUnavailable, InputError, MissingDependency, NetdiagError, ParseError)
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.routes import lookup, read_routes
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import iptables, model, nftables, ufw
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import zones as firewalld_zones
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import PATHS, Evaluator, normalise_packet

LAYERS = ("nftables", "iptables", "firewalld", "ufw")
# layers whose rules the kernel runs; firewalld and ufw load theirs into these
FILTERING_LAYERS = ("nftables", "iptables")
PACKET_KEYS = ("family", "proto", "src", "dst", "sport", "dport", "iif", "oif", "ct_state", "ct_status",
               "icmp_type", "icmp_code", "mark", "path")


def _layer(present=False, active=False, read_with=None, error=None, **extra):
    out = {"present": present, "active": active, "read_with": read_with, "error": error, "unreadable": False}
    out.update(extra)
    return out


def _unreadable(name, exc, warnings):
    """The entry of a layer that is there but whose rules or files could not be parsed."""
    error = "%s: cannot read this layer, its output could not be parsed: %s" % (name, exc)
    warnings.append(error)
    return _layer(True, None, error=error, unreadable=True)


def _active_tables(ruleset, backends):
    return [t for t in ruleset["tables"] if t["backend"] in backends and any(
        c["rules"] or c.get("policy") == "drop" for c in t["chains"])]


def local_addresses(run=None):
    """The host's own addresses (``ip -j addr``), or None when they cannot be read."""
    run = run or iptables.run_command
    got = run(["ip", "-j", "addr", "show"])
    if not got or got[0] != 0:
        return None
    try:
        data = json.loads(got[1])
    except ValueError:
        return None
    return sorted({a["local"] for link in data for a in link.get("addr_info") or [] if a.get("local")})


def gather(layers=None, readers=None):
    """Read the layers (all by default).  ``readers`` overrides the live readers (tests):
    ``{"nftables": f() -> (ruleset, how), "iptables": f() -> ruleset, "firewalld": f() -> facts|None,
    "ufw": f() -> facts|None, "addresses": f() -> [addr]|None}``.
    """
    wanted = list(layers or LAYERS)
    bad = [name for name in wanted if name not in LAYERS]
    if bad:
        raise InputError("unknown layer%s %s: expected some of %s" % (
            "s" if len(bad) > 1 else "", ", ".join(repr(b) for b in bad), ", ".join(LAYERS)))
    readers = dict(readers or {})
    readers.setdefault("nftables", nftables.read_nftables)
    readers.setdefault("iptables", iptables.read_iptables)
    readers.setdefault("firewalld", firewalld_zones.read_firewalld)
    readers.setdefault("ufw", ufw.read_ufw)
    readers.setdefault("addresses", local_addresses)
    found = {}
    warnings = []
    nft_rs, ipt_rs = None, None
    if "nftables" in wanted:
        try:
            nft_rs, how = readers["nftables"]()
            found["nftables"] = _layer(True, bool(_active_tables(nft_rs, ("nftables",))), how,
                                       tables=["%s %s" % (t["family"], t["name"]) for t in nft_rs["tables"]])
        except MissingDependency as exc:
            found["nftables"] = _layer(error=str(exc))
        except BackendUnavailable as exc:
            found["nftables"] = _layer(True, error=str(exc))
            warnings.append(str(exc))
        except ParseError as exc:
            nft_rs = None
            found["nftables"] = _unreadable("nftables", exc, warnings)
    if "iptables" in wanted:
        try:
            ipt_rs = readers["iptables"]()
            variants = sorted({t["backend"] for t in ipt_rs["tables"]})
            active = _active_tables(ipt_rs, ("iptables-nft", "iptables-legacy"))
            found["iptables"] = _layer(bool(ipt_rs["tables"]), bool(active), "iptables-save, ip6tables-save",
                                       variants=variants,
                                       active_variants=sorted({t["backend"] for t in active}),
                                       families=sorted({"ipv4" if t["family"] == "ip" else "ipv6" for t in active}),
                                       mixed_legacy_and_nft=bool(iptables.mixed_backends_warnings(
                                           model.merge(ipt_rs, nft_rs))))
        except MissingDependency as exc:
            found["iptables"] = _layer(error=str(exc))
        except ParseError as exc:
            ipt_rs = None
            found["iptables"] = _unreadable("iptables", exc, warnings)
    ruleset = model.combine(nft_rs, [ipt_rs] if ipt_rs else [])
    if nft_rs is not None and ipt_rs is not None:
        # the nft tables themselves can collide with legacy iptables (read_iptables only saw iptables)
        for w in iptables.mixed_backends_warnings(ruleset):
            if w not in ruleset["warnings"]:
                ruleset["warnings"].append(w)
    fw_facts = None
    if "firewalld" in wanted:
        try:
            fw_facts = readers["firewalld"]()
            if fw_facts is None:
                found["firewalld"] = _layer()
            else:
                found["firewalld"] = _layer(True, fw_facts["running"], fw_facts["read_with"],
                                            reason=fw_facts.get("reason"), backend=fw_facts.get("backend"))
                warnings.extend(fw_facts.get("warnings") or [])
        except MissingDependency as exc:
            found["firewalld"] = _layer(True, error=str(exc))
            warnings.append(str(exc))
        except ParseError as exc:
            fw_facts = None
            found["firewalld"] = _unreadable("firewalld", exc, warnings)
    ufw_facts = None
    if "ufw" in wanted:
        try:
            ufw_facts = readers["ufw"]()
            if ufw_facts is None:
                found["ufw"] = _layer()
            else:
                ufw.link_origins(ufw_facts, ruleset)
                found["ufw"] = _layer(True, bool(ufw_facts["active"]), ", ".join(ufw_facts["read_from"]),
                                      enabled=ufw_facts["enabled"])
                warnings.extend(ufw_facts["warnings"])
                if ufw_facts["enabled"] and not ufw_facts["active"]:
                    warnings.append("ufw is enabled in ufw.conf but its chains are not loaded")
        except ParseError as exc:
            ufw_facts = None
            found["ufw"] = _unreadable("ufw", exc, warnings)
    warnings = ruleset["warnings"] + [w for w in warnings if w not in ruleset["warnings"]]
    return {"layers": found, "ruleset": ruleset, "firewalld": fw_facts, "ufw": ufw_facts,
            "local_addresses": readers["addresses"](), "firewall_warnings": warnings}


def _split_packet(packet, index):
    if not isinstance(packet, dict):
        raise InputError("packets[%d] is not a dict: %r" % (index, packet))
    unknown = sorted(set(packet) - set(PACKET_KEYS))
    if unknown:
        raise InputError("packets[%d]: unknown key%s %s (expected %s)" % (
            index, "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(PACKET_KEYS)))
    pkt = {k: v for k, v in packet.items() if v is not None and k != "path"}
    return pkt, packet.get("path")


def _default_path(pkt, locals_):
    """input when the destination is one of the host's addresses (or unknown), else forward."""
    dst = pkt.get("dst")
    if dst is None or locals_ is None:
        return "input"
    try:
        ip = ipaddress.ip_address(str(dst))
    except ValueError:
        return "input"  # the evaluator names the bad value
    return "input" if str(ip) in locals_ or ip.is_loopback else "forward"


def evaluate_packets(facts, packets, routes=None, evaluator=None):
    """One verdict per packet, in order, against ``facts`` (what :func:`gather` returned; ``evaluator``: its ruleset compiled).

    Every packet is validated first: a bad one raises InputError naming it and nothing is
    evaluated.  Each verdict is the evaluator's result plus ``packet``, ``path``,
    ``deciding_rule`` (the rule that decided, the last accepting rule for an accept),
    ``firewalld`` (zone-level answer) and ``ufw`` (answer in ufw's terms) when those layers
    were read (``{"error": ...}`` when they are there but unreadable), and ``readable_layers``.

    When a filtering layer (nftables, iptables) is unreadable its rules may decide any packet:
    the verdict is ``indeterminate`` naming that layer and why, and ``readable_layers`` holds
    what the layers that were read say (``verdict``, ``reply``, ``rule``, ``deciding_rule``,
    ``reason``); it is None when every filtering layer was read.
    """
    if not isinstance(facts, dict) or not isinstance(facts.get("ruleset"), dict):
        raise InputError("the facts hold no ruleset: pass the result of netdiag.reachability.firewall_info "
                         "run with include_rules: true")
    if not isinstance(packets, list):
        raise InputError("packets must be a list of dicts, got %r" % (packets,))
    evaluator = Evaluator(facts["ruleset"]) if evaluator is None else evaluator
    locals_ = facts.get("local_addresses")
    prepared = []
    for i, packet in enumerate(packets):
        pkt, path = _split_packet(packet, i)
        try:
            normalise_packet(pkt)
        except InputError as exc:
            raise InputError("packets[%d]: %s" % (i, exc))
        path = path or _default_path(pkt, locals_)
        if path not in PATHS:
            raise InputError("packets[%d]: invalid path %r: expected one of %s" % (i, path, ", ".join(PATHS)))
        iif_from = None
        if path in ("input", "forward") and "iif" not in pkt and pkt.get("src") and routes:
            # a packet from src comes in where the host's route toward src goes out (no asymmetric routing)
            route = lookup(routes, str(pkt["src"]))
            if route and route.get("dev") and route.get("type") == "unicast":
                pkt["iif"] = route["dev"]
                iif_from = "the route toward %s (%s) goes out on %s" % (pkt["src"], route.get("dst"), route["dev"])
        prepared.append((packet, pkt, path, iif_from))
    out = []
    fw_facts = facts.get("firewalld")
    ufw_facts = facts.get("ufw")
    unreadable = _unreadable_layers(facts)
    blind = [(name, error) for name, error in unreadable if name in FILTERING_LAYERS]
    for packet, pkt, path, iif_from in prepared:
        res = evaluator.evaluate(pkt, path=path, local_addresses=locals_)
        res["packet"] = dict(packet)
        res["path"] = path
        res["iif"] = {"name": pkt["iif"], "from": iif_from} if iif_from else None
        res["deciding_rule"] = res["rule"]
        if res["verdict"] == "accept":
            explicit = [a for a in res.get("accepts") or [] if a.get("rule")]
            res["deciding_rule"] = explicit[-1]["rule"] if explicit else None
        res["readable_layers"] = None
        if blind:
            _not_decided_by_readable_layers(res, blind)
        res["firewalld"] = None
        if fw_facts and (fw_facts.get("runtime") or fw_facts.get("permanent")) and path == "input":
            try:
                res["firewalld"] = firewalld_zones.zone_answer(fw_facts, pkt, res)
            except NetdiagError as exc:
                res["firewalld"] = {"error": str(exc)}
        res["ufw"] = ufw.answer(ufw_facts, res, path) if ufw_facts and ufw_facts.get("active") else None
        for name, error in unreadable:
            if name in ("firewalld", "ufw") and (name == "ufw" or path == "input"):
                res[name] = {"error": error}
        out.append(res)
    return out


def _unreadable_layers(facts):
    """[(layer, error)] for the layers ``gather`` found present but could not parse."""
    layers = facts.get("layers")
    if not isinstance(layers, dict):
        return []
    return [(name, layers[name].get("error") or "%s: cannot read this layer" % name) for name in LAYERS
            if isinstance(layers.get(name), dict) and layers[name].get("unreadable")]


def _not_decided_by_readable_layers(res, blind):
    """An unreadable filtering layer may drop, reject or rewrite any packet: say so, and keep
    what the layers that were read say in ``readable_layers`` (never a faked accept)."""
    res["readable_layers"] = {k: res.get(k) for k in ("verdict", "reply", "rule", "deciding_rule", "reason")}
    names = " and ".join(name for name, _error in blind)
    res.update(verdict="indeterminate", reply=None, rule=None, deciding_rule=None, policy=False,
               reason="cannot tell: the %s layer%s could not be read, and %s rules may decide this packet (%s); "
                      "the layers that were read alone say %s: %s"
                      % (names, "s" if len(blind) > 1 else "", "their" if len(blind) > 1 else "its",
                         "; ".join(error for _name, error in blind), res["verdict"], res["reason"]))


def result(layers=None, packets=None, include_rules=True, readers=None):
    """What the module returns: gather, evaluate, and drop the bulky model when asked."""
    packets = list(packets or [])
    facts = gather(layers, readers)
    routes = None
    if any(isinstance(p, dict) and not p.get("iif") for p in packets):
        routes = (readers or {}).get("routes", lambda: read_routes()["routes"])()
    verdicts = evaluate_packets(facts, packets, routes) if packets else []
    if not include_rules:
        facts["ruleset"] = None
    facts["verdicts"] = verdicts
    return facts
