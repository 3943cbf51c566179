# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's routes (table main), so the explainer can tell where a packet goes next and when
the host itself discards it or its reply (a blackhole, unreachable or prohibit route, no route).

Read with iproute2's JSON output (``ip -j route show table main``, ``ip -j rule show``); without
``ip``, IPv4 routes come from ``/proc/net/route``, which cannot tell a blackhole from the other
discarding kinds.  Every route is ``{family, dst, type, gateway, dev, metric}``; ``dst`` is a
network (``0.0.0.0/0`` for the default route); ``type`` is ``unicast``, ``blackhole``,
``unreachable``, ``prohibit``, ``throw`` or ``local``...
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import struct

from ansible_collections.netdiag.reachability.plugins.module_utils._common.commands import command_output as _run
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import ParseError

DISCARDING = ("blackhole", "unreachable", "prohibit")


def parse_ip_json(text, family):
    """Routes from ``ip -j -4|-6 route show table main``."""
    try:
        data = json.loads(text or "[]")
    except ValueError as exc:
        raise ParseError("ip -j route: not JSON (%s)" % exc)
    if not isinstance(data, list):
        raise ParseError("ip -j route: expected a list, got %s" % type(data).__name__)
    out = []
    for r in data:
        if not isinstance(r, dict) or not isinstance(r.get("dst"), str):
            raise ParseError("ip -j route: a route without dst: %r" % (r,))
        dst = r["dst"]
        if dst == "default":
            dst = "0.0.0.0/0" if family == "ipv4" else "::/0"
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            raise ParseError("ip -j route: bad dst %r" % r["dst"])
        out.append({"family": family, "dst": str(net), "type": r.get("type") or "unicast",
                    "gateway": r.get("gateway"), "dev": r.get("dev"), "metric": r.get("metric") or 0})
    return out


def parse_proc_net_route(text):
    """IPv4 routes from ``/proc/net/route`` (no route types there: a route without a device
    discards, RTF_REJECT marks unreachable/prohibit)."""
    out = []
    for line in (text or "").splitlines()[1:]:
        parts = line.split()
        if len(parts) < 8:
            continue
        try:
            dst, gw, flags, mask = (int(parts[1], 16), int(parts[2], 16), int(parts[3], 16), int(parts[7], 16))
            metric = int(parts[6])
        except ValueError:
            raise ParseError("/proc/net/route: bad line %r" % line)
        as_ip = [socket.inet_ntoa(struct.pack("<I", v)) for v in (dst, gw, mask)]
        net = ipaddress.ip_network("%s/%s" % (as_ip[0], as_ip[2]), strict=False)
        kind = "unreachable" if flags & 0x0200 else "blackhole" if parts[0] == "*" else "unicast"
        out.append({"family": "ipv4", "dst": str(net), "type": kind,
                    "gateway": as_ip[1] if flags & 0x0002 else None, "dev": None if parts[0] == "*" else parts[0],
                    "metric": metric})
    return out


def policy_rules(text):
    """The ``ip -j rule show`` entries that are not the three default ones (local, main, default)."""
    try:
        data = json.loads(text or "[]")
    except ValueError as exc:
        raise ParseError("ip -j rule: not JSON (%s)" % exc)
    default = {(0, "local"), (32766, "main"), (32767, "default")}
    return [r for r in data if isinstance(r, dict) and not (
        (r.get("priority"), str(r.get("table"))) in default and r.get("src", "all") == "all" and len(r) == 3)]


def read_routes(root="/", run=_run):
    """``{routes: [...], read_with, warnings: [...]}`` for table main, both families."""
    warnings = []
    # another root (a saved /proc): only its files say anything about that host
    v4 = run(["ip", "-j", "-4", "route", "show", "table", "main"]) if root == "/" else None
    if v4 is not None:
        routes = parse_ip_json(v4, "ipv4")
        v6 = run(["ip", "-j", "-6", "route", "show", "table", "main"])
        if v6 is not None:
            routes += parse_ip_json(v6, "ipv6")
        rules = run(["ip", "-j", "rule", "show"])
        extra = policy_rules(rules) if rules is not None else []
        if extra:
            warnings.append("%d policy routing rule%s besides the defaults: the routes of table main may not be the "
                            "ones a packet uses" % (len(extra), "" if len(extra) == 1 else "s"))
        return {"routes": routes, "read_with": "ip -j", "warnings": warnings}
    path = os.path.join(root, "proc/net/route")
    try:
        with open(path) as fh:
            routes = parse_proc_net_route(fh.read())
    except OSError as exc:
        if root != "/":   # a saved tree without the routes: nothing to say about them
            return {"routes": None, "read_with": None, "warnings": []}
        return {"routes": None, "read_with": None, "warnings": ["cannot read the routes: no ip command, %s" % exc]}
    warnings.append("no ip command: IPv4 routes read from /proc/net/route (IPv6 routes and route types unknown)")
    return {"routes": routes, "read_with": "/proc/net/route", "warnings": warnings}


def lookup(routes, address):
    """The route table main picks for ``address``: longest prefix, then lowest metric; None when none."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    best = None
    for r in routes or []:
        try:
            net = ipaddress.ip_network(r["dst"], strict=False)
        except (KeyError, ValueError):
            continue
        if net.version != ip.version or ip not in net or r.get("type") in ("local", "broadcast", "throw"):
            continue
        key = (net.prefixlen, -(r.get("metric") or 0))
        if best is None or key > best[0]:
            best = (key, r)
    return best[1] if best else None
