# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per packet: do the cloud layers in front of an interface let it through, by which rule, and the fix.

Every layer is a table of the common rule model (``cloud.common``), decided by the host
evaluator (``rules.evaluate.Evaluator``), so a cloud verdict reads like a host one::

    {"interface", "provider", "packet",
     "verdict": "accept" | "drop" | "indeterminate",
     "reply": None,              # security groups and ACLs drop silently (the client sees 'filtered')
     "rule": ORIGIN | None,      # the deciding rule; for accept, the rule that allowed the packet in
     "policy": bool,             # decided by a layer's default (no rule allows it / the ACL's * rule)
     "chain", "trace", "nat", "hooks", "reason", "warnings",   # as the host evaluator
     "layer": "network_acl" | "security_group" | None,         # the layer that decided a denial
     "steps": [STEP, ...],       # every layer, in the order the packet and its replies meet them
     "fix": FIX | None,          # the change for the deciding denial
     "fixes": [FIX, ...]}        # every change the flow needs (one per denying layer)

    STEP = {"layer", "backend", "table", "label", "direction": "inbound" | "return", "verdict",
            "rule", "policy", "reason", "ports": [[lo, hi], ...], "denied_ports": [[lo, hi], ...]}

The packet walks ``input`` (network ACL inbound, then the security groups); the reply walks
``output`` (security groups egress, which pass it because they are stateful, then the network
ACL outbound, which is stateless and must allow the client's ephemeral ports).  When the packet
has no ``sport``, the reply is checked for every port in ``ephemeral_ports``.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import alicloud
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import aws
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import common
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator, normalise_packet
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.model import PORT_PROTOS, from_dict, new_ruleset

FIXERS = {aws.PROVIDER: aws.fix, alicloud.PROVIDER: alicloud.fix}
_PACKET_KEYS = ("family", "proto", "src", "dst", "sport", "dport", "icmp_type", "icmp_code")
_REPLY_ICMP = {8: 0, 128: 129, 13: 14}


def clean_packet(packet):
    """Validate a packet for the cloud evaluator and return it in plain, normalised form.

    Cloud rules match on the source address and the destination port, so both are required
    (the port only for protocols that have ports).  Raises InputError naming the bad value.
    """
    if isinstance(packet, dict):
        extra = set(packet) - set(_PACKET_KEYS) - {"ct_state"}
        if extra:
            raise InputError("unknown packet keys for a cloud packet: %s (expected %s)"
                             % (", ".join(sorted(extra)), ", ".join(_PACKET_KEYS)))
    pkt = normalise_packet(packet)
    if "src" not in pkt:
        raise InputError("packet %r has no src: security group and network ACL rules match on the source address" % (packet,))
    if pkt["proto"] in PORT_PROTOS and "dport" not in pkt:
        raise InputError("packet %r has no dport" % (packet,))
    out = {"family": pkt["family"], "proto": pkt["proto"], "src": str(ipaddress.ip_address(pkt["src"]))}
    if "dst" in pkt:
        out["dst"] = str(ipaddress.ip_address(pkt["dst"]))
    for key in ("sport", "dport", "icmp_type", "icmp_code"):
        if key in pkt:
            out[key] = pkt[key]
    return out


def _single(table):
    rs = new_ruleset()
    rs["tables"] = [table]
    return rs


def _hooks(table):
    return {c.get("hook") for c in table["chains"] if c.get("hook")}


def _flow_text(pkt):
    dst = pkt.get("dst") or "?"
    if pkt.get("dport") is not None:
        return "%s %s -> %s:%s" % (pkt["proto"], pkt["src"], dst, pkt["dport"])
    return "%s %s -> %s" % (pkt["proto"], pkt["src"], dst)


def _reply_packet(pkt, port=None):
    """The reply to ``pkt`` (addresses and ports swapped, an established connection), or None if none is expected."""
    reply = {"family": pkt["family"], "proto": pkt["proto"], "ct_state": "established", "dst": pkt["src"]}
    if pkt.get("dst"):
        reply["src"] = pkt["dst"]
    if pkt["proto"] in PORT_PROTOS:
        reply["sport"] = pkt["dport"]
        reply["dport"] = port
    elif pkt["proto"] in ("icmp", "ipv6-icmp"):
        request = pkt.get("icmp_type", 8 if pkt["family"] == "ipv4" else 128)
        if request not in _REPLY_ICMP:
            return None
        reply["icmp_type"] = _REPLY_ICMP[request]
    return reply


def _segments(table, lo, hi):
    """Split [lo, hi] where the reply-path rules' port matches change, so one port per piece decides it."""
    cuts = {lo, hi + 1}
    for chain in table["chains"]:
        if chain.get("hook") not in ("output", "postrouting"):
            continue
        for rule in chain["rules"]:
            for m in rule["matches"]:
                if m.get("key") != "dport":
                    continue
                for v in m.get("values") or []:
                    a, b = (v[0], v[1]) if isinstance(v, list) else (v, v)
                    for cut in (int(a), int(b) + 1):
                        if lo < cut <= hi:
                            cuts.add(cut)
    edges = sorted(cuts)
    return [(edges[i], edges[i + 1] - 1) for i in range(len(edges) - 1)]


def _step_reason(table, direction, res, pkt):
    label = table.get("label") or table["name"]
    rule = res.get("rule") or {}
    if res["verdict"] == "accept":
        if rule:
            return "allowed by %s: %s" % (label, rule.get("text"))
        return "allowed by %s" % label
    if res["verdict"] == "indeterminate":
        return "cannot decide %s: %s" % (label, res.get("reason"))
    if rule:
        return "denied by %s: %s" % (label, rule.get("text"))
    if table.get("layer") == common.LAYER_NETWORK_ACL:
        return "no rule of %s matches it (the implicit * rule denies it)" % label
    if direction == "return":
        return "no rule of %s allows it (default deny)" % label
    return "no rule of %s allows it (a stateful allow-list: default deny)" % label


class _Compiled:
    """An interface's layers, each compiled once."""

    def __init__(self, interface):
        rs = from_dict(interface["ruleset"])
        self.interface = interface
        self.layers = [(t, Evaluator(_single(t))) for t in rs["tables"]]
        self.warnings = list(rs.get("warnings") or [])

    def evaluate(self, pkt, ephemeral):
        steps, results = [], []
        for table, ev in self.layers:
            if _hooks(table) & {"prerouting", "input"}:
                res = ev.evaluate(dict(pkt), "input")
                results.append(res)
                steps.append(self._step(table, "inbound", res, pkt, None))
        reply_base = _reply_packet(pkt)
        if reply_base is not None:
            for table, ev in self.layers:
                if not _hooks(table) & {"output", "postrouting"}:
                    continue
                if pkt["proto"] in PORT_PROTOS:
                    pieces = [(pkt["sport"], pkt["sport"])] if pkt.get("sport") is not None else _segments(table, *ephemeral)
                else:
                    pieces = [None]
                steps.append(self._return_step(table, ev, pkt, pieces))
        order = {"inbound": 0, "return": 1}
        steps.sort(key=lambda s: (order[s["direction"]], s["_hook"]))
        return self._combine(pkt, steps, results)

    def _step(self, table, direction, res, pkt, ports):
        if res["verdict"] == "accept" and res.get("rule") is None and res.get("trace"):
            res = dict(res, rule=res["trace"][-1])  # the host evaluator names accepting rules in the trace
        chain = res.get("chain") or {}
        hook = chain.get("hook") or min((c["hook"] for c in table["chains"] if c.get("hook")), key=common.HOOK_ORDER.get)
        return {"layer": table.get("layer"), "backend": table["backend"], "table": table["name"],
                "label": table.get("label") or table["name"], "direction": direction, "verdict": res["verdict"],
                "rule": res.get("rule"), "policy": bool(res.get("policy")),
                "reason": _step_reason(table, direction, res, pkt), "ports": ports, "denied_ports": [],
                "_hook": common.HOOK_ORDER.get(hook, 9), "_result": res}

    def _return_step(self, table, ev, pkt, pieces):
        runs = []  # [lo, hi, result]
        for piece in pieces:
            res = ev.evaluate(_reply_packet(pkt, None if piece is None else piece[0]), "output")
            key = (res["verdict"], (res.get("rule") or {}).get("handle"), res.get("policy"))
            if runs and piece is not None and runs[-1][3] == key and runs[-1][1] + 1 == piece[0]:
                runs[-1][1] = piece[1]
            else:
                runs.append([piece[0] if piece else None, piece[1] if piece else None, res, key])
        decisive = next((r for r in runs if r[2]["verdict"] == "drop"), None) \
            or next((r for r in runs if r[2]["verdict"] == "indeterminate"), None) or runs[0]
        hook = "output"
        for c in table["chains"]:
            if c.get("hook") in ("output", "postrouting"):
                hook = c["hook"]
        step = self._step(table, "return", decisive[2], pkt, None)
        step["_hook"] = common.HOOK_ORDER[hook]
        if pieces != [None]:
            step["ports"] = [[pieces[0][0], pieces[-1][1]]]
            step["denied_ports"] = [[r[0], r[1]] for r in runs if r[2]["verdict"] == "drop"]
        if step["verdict"] == "drop" and step["denied_ports"]:
            shown = ", ".join("%d" % a if a == b else "%d-%d" % (a, b) for a, b in step["denied_ports"])
            step["reason"] = "reply to ports %s: %s" % (shown, step["reason"])
        return step

    def _combine(self, pkt, steps, results):
        iface = self.interface
        drops = [s for s in steps if s["verdict"] == "drop"]
        unknown = [s for s in steps if s["verdict"] == "indeterminate"]
        flow = _flow_text(pkt)
        if drops:
            deciding, verdict = drops[0], "drop"
        elif unknown:
            deciding, verdict = unknown[0], "indeterminate"
        else:
            verdict = "accept"
            inbound = [s for s in steps if s["direction"] == "inbound" and s["rule"]]
            deciding = inbound[-1] if inbound else (steps[0] if steps else None)
        if deciding is None:
            reason = "%s: no cloud layer applies to %s" % (flow, iface["id"])
        elif verdict == "accept":
            reason = "%s to %s is allowed: %s" % (flow, iface["id"], "; ".join(s["reason"] for s in steps))
        elif deciding["direction"] == "return":
            reason = "%s to %s: the packet gets in, but its return traffic is %s %s" % (
                flow, iface["id"], "dropped:" if verdict == "drop" else "undecided:", deciding["reason"])
            if deciding["layer"] == common.LAYER_NETWORK_ACL:
                reason += " (network ACLs are stateless: replies need an outbound rule for the client's ephemeral ports)"
        else:
            reason = "%s to %s is %s: %s" % (flow, iface["id"], "dropped" if verdict == "drop" else "undecided",
                                             deciding["reason"])
        res = (deciding or {}).get("_result") or {}
        fixer = FIXERS.get(iface.get("provider"))
        fixes = [fixer(s, pkt, iface) for s in drops] if fixer else []
        trace, hooks, warnings = [], [], list(self.warnings)
        for r in results:
            trace.extend(r.get("trace") or [])
            hooks.extend(h for h in r.get("hooks") or [] if h not in hooks)
            warnings.extend(w for w in r.get("warnings") or [] if w not in warnings)
        clean_steps = [{k: v for k, v in s.items() if not k.startswith("_")} for s in steps]
        return {
            "interface": iface["id"], "provider": iface.get("provider"), "packet": pkt,
            "verdict": verdict, "reply": None, "rule": deciding["rule"] if deciding else None,
            "policy": bool(deciding and deciding["policy"] and verdict != "accept"),
            "chain": res.get("chain"), "trace": trace, "nat": None, "hooks": hooks, "reason": reason,
            "warnings": warnings, "layer": deciding["layer"] if deciding and verdict != "accept" else None,
            "steps": clean_steps, "fix": fixes[0] if fixes else None, "fixes": fixes,
        }


def parse_ephemeral(value):
    """``"32768-60999"`` / ``[lo, hi]`` / None -> (lo, hi) (reuses ports.parse_port_range)."""
    from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import parse_port_range
    if value is None:
        return common.DEFAULT_EPHEMERAL_PORTS
    if isinstance(value, (list, tuple)) and len(value) == 2:
        value = "%s-%s" % tuple(value)
    try:
        return parse_port_range(value)
    except InputError as exc:
        raise InputError("invalid ephemeral_ports %r: %s" % (value, exc))


def targets_for(packet, interfaces):
    """The interfaces a packet is evaluated against: those that own its dst, or all when it has none."""
    if packet.get("dst") is None:
        return list(interfaces)
    out = [i for i in interfaces if packet["dst"] in (i.get("private_addresses") or []) + (i.get("public_addresses") or [])]
    if not out:
        owned = sorted({a for i in interfaces for a in (i.get("private_addresses") or []) + (i.get("public_addresses") or [])})
        raise InputError("packet dst %s is not an address of the interfaces found (%s)"
                         % (packet["dst"], ", ".join(owned) or "none"))
    return out


def evaluate_packets(interfaces, packets, ephemeral_ports=None):
    """One verdict per (packet, interface it reaches); see the module docstring for the shape."""
    ephemeral = parse_ephemeral(ephemeral_ports)
    compiled = {}
    verdicts = []
    for packet in packets:
        pkt = clean_packet(packet)
        for iface in targets_for(pkt, interfaces):
            if iface["id"] not in compiled:
                compiled[iface["id"]] = _Compiled(iface)
            p = dict(pkt)
            if p.get("dst") is None:
                fam = 4 if p["family"] == "ipv4" else 6
                own = [a for a in iface.get("private_addresses") or [] if ipaddress.ip_address(a).version == fam]
                if own:
                    p["dst"] = own[0]
            verdicts.append(compiled[iface["id"]].evaluate(p, ephemeral))
    return verdicts


def _addresses(values, what):
    out = []
    for value in values or []:
        try:
            out.append(str(ipaddress.ip_address(str(value).strip())))
        except ValueError:
            raise InputError("invalid %s %r: not an IP address" % (what, value))
    return out


def _ids(values, prefix, what):
    out = []
    for value in values or []:
        text = str(value).strip()
        if not re.match(r"^%s[0-9A-Za-z-]+$" % prefix, text):
            raise InputError("invalid %s %r (expected %s...)" % (what, value, prefix))
        out.append(text)
    return out


def security_group_info(provider, addresses=(), instance_ids=(), network_interface_ids=(), packets=(), ephemeral_ports=None,
                        region=None, profile=None, access_key=None, secret_key=None, session_token=None,
                        endpoint_url=None, retries=4, retry_delay=1.0):
    """Read the interfaces for the targets and evaluate the packets against them.

    Without addresses or ids, the packets' ``dst`` addresses are the targets.  Returns
    ``{"provider", "region", "interfaces": [RECORD...], "verdicts": [VERDICT...], "warnings": [...]}``.
    """
    if provider not in FIXERS:
        raise InputError("invalid provider %r: expected one of %s" % (provider, ", ".join(sorted(FIXERS))))
    cleaned = [clean_packet(p) for p in packets or []]
    parse_ephemeral(ephemeral_ports)
    addresses = _addresses(addresses, "address")
    instance_ids = _ids(instance_ids, "i-", "instance id")
    interface_ids = _ids(network_interface_ids, "eni-", "network interface id")
    if not (addresses or instance_ids or interface_ids):
        addresses = sorted({p["dst"] for p in cleaned if p.get("dst")}, key=cleaned_order(cleaned))
    if not (addresses or instance_ids or interface_ids):
        raise InputError("nothing to look up: give addresses, instance_ids or network_interface_ids, or packets with a dst")
    if provider == aws.PROVIDER:
        client, region = aws.connect(region=region, profile=profile, access_key=access_key, secret_key=secret_key,
                                     session_token=session_token, endpoint_url=endpoint_url, retries=retries)
        found = aws.read(client, region, addresses, instance_ids, interface_ids)
    else:
        if profile:
            raise InputError("profile %r: profiles are only read for provider aws; give access_key/secret_key "
                             "or the ALIBABA_CLOUD_* environment variables" % (profile,))
        client = alicloud.Client(region=region, access_key=access_key, secret_key=secret_key,
                                 security_token=session_token, endpoint_url=endpoint_url, retries=retries,
                                 retry_delay=retry_delay)
        region = client.region
        found = alicloud.read(client, addresses, instance_ids, interface_ids)
    verdicts = evaluate_packets(found["interfaces"], cleaned, ephemeral_ports)
    return {"provider": provider, "region": region, "interfaces": found["interfaces"], "verdicts": verdicts,
            "warnings": found["warnings"]}


def cleaned_order(cleaned):
    order = {}
    for p in cleaned:
        if p.get("dst") and p["dst"] not in order:
            order[p["dst"]] = len(order)
    return lambda a: order[a]
