# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which of a host's gathered listeners (listeners_info's ``listeners``) accepts a destination,
or the nearest miss: the way the kernel scores socket lookups, on saved facts."""

from __future__ import annotations

import ipaddress

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import parse_port
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.listeners import PROTOCOLS


def _dest(address):
    try:
        ip = ipaddress.ip_address(str(address).strip())
    except ValueError:
        raise InputError("invalid destination address %r: not an IPv4 or IPv6 address" % (address,))
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip


def _bound(listener):
    """(ip, is_v4_mapped) of a listener's bound address, mapped addresses as IPv4."""
    try:
        ip = ipaddress.ip_address(listener["address"] if isinstance(listener["address"], str) else "")
    except ValueError:
        raise InputError("a listener's address %r is not an IPv4 or IPv6 address (listener %r)"
                         % (listener.get("address"), listener))
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, True
    return ip, False


def _accepts(listener, dest):
    """Rank (higher is preferred, as the kernel scores lookups) or 0; None if unknown."""
    ip, mapped = _bound(listener)
    family = listener["family"]
    if dest.version == 4:
        if ip.version == 4 and ip == dest:
            return 4 if family == "ipv4" else 3
        if family == "ipv4" and ip.is_unspecified:
            return 2
        if family == "ipv6" and not mapped and ip.is_unspecified:
            v6only = listener.get("bindv6only")
            if v6only is None:
                return None
            return 0 if v6only else 1
        return 0
    if family != "ipv6" or mapped:
        return 0
    if ip == dest:
        return 4
    if ip.is_unspecified:
        return 2
    return 0


def _describe(listener):
    addr = listener["address"]
    if ":" in addr:
        addr = "[%s]" % addr
    who = ""
    if listener.get("process"):
        who = " (%s, pid %s)" % (listener["process"], ",".join(str(p) for p in listener.get("pids") or []))
    return "%s %s:%d%s" % (listener["protocol"], addr, listener["port"], who)


def match_listener(listeners, address, port, proto):
    """Which listener would accept ``address:port/proto``, or the nearest miss.

    Returns ``{accepted, cause, miss, listener, reason}``:

    - accepted: ``cause`` ``ok`` (or ``listen_backlog_full`` when the TCP accept queue is
      over its backlog), ``miss`` None, ``listener`` the socket the kernel would pick;
    - not accepted: ``accepted`` False, ``listener`` the nearest miss or None, ``miss`` one of
      ``loopback_only`` (right port, bound to loopback), ``ipv6_only`` (IPv6 wildcard with
      IPV6_V6ONLY, IPv4 destination), ``other_address`` (right port, another address or
      family), ``other_protocol`` (right port, other protocol), ``none``; ``cause`` in the
      explainer's vocabulary (``loopback_only``, ``wrong_address``, ``no_listener``);
    - ``accepted`` None, ``cause`` ``unknown`` when only an IPv6 wildcard of unknown
      IPV6_V6ONLY could take an IPv4 destination.
    """
    dest = _dest(address)
    port = parse_port(port)
    proto = str(proto).strip().lower()
    if proto not in PROTOCOLS:
        raise InputError("invalid protocol %r: expected one of %s" % (proto, ", ".join(PROTOCOLS)))
    same = [l for l in listeners if l["protocol"] == proto and l["port"] == port]
    best, best_rank, unknown = None, 0, None
    for listener in same:
        rank = _accepts(listener, dest)
        if rank is None:
            unknown = unknown or listener
        elif rank > best_rank:
            best, best_rank = listener, rank
    target = "%s %s port %d" % (proto, dest, port)
    if best is not None:
        depth, backlog = best.get("accept_queue"), best.get("accept_backlog")
        if proto == "tcp" and depth is not None and backlog is not None and depth > backlog:
            return {"accepted": True, "cause": "listen_backlog_full", "miss": None, "listener": best,
                    "reason": "%s is accepted by %s but its accept queue is full (%d queued, backlog %d): "
                              "new connections are dropped" % (target, _describe(best), depth, backlog)}
        return {"accepted": True, "cause": "ok", "miss": None, "listener": best,
                "reason": "%s is accepted by %s" % (target, _describe(best))}
    if unknown is not None:
        return {"accepted": None, "cause": "unknown", "miss": None, "listener": unknown,
                "reason": "%s could only be accepted by the IPv6 wildcard %s, whose IPV6_V6ONLY is unknown"
                          % (target, _describe(unknown))}
    loop = [l for l in same if l["scope"] == "loopback"]
    if loop and not dest.is_loopback:
        return {"accepted": False, "cause": "loopback_only", "miss": "loopback_only", "listener": loop[0],
                "reason": "%s: the service listens on loopback only (%s); other hosts cannot reach it"
                          % (target, _describe(loop[0]))}
    v6only = [l for l in same if l["family"] == "ipv6" and l["scope"] == "any" and l.get("bindv6only")]
    if v6only and dest.version == 4:
        return {"accepted": False, "cause": "wrong_address", "miss": "ipv6_only", "listener": v6only[0],
                "reason": "%s: the only wildcard listener is IPv6-only (%s, IPV6_V6ONLY set)"
                          % (target, _describe(v6only[0]))}
    if same:
        return {"accepted": False, "cause": "wrong_address", "miss": "other_address", "listener": same[0],
                "reason": "%s: the port is bound to another address (%s)"
                          % (target, ", ".join(_describe(l) for l in same))}
    other = [l for l in listeners if l["protocol"] != proto and l["port"] == port]
    if other:
        return {"accepted": False, "cause": "no_listener", "miss": "other_protocol", "listener": other[0],
                "reason": "%s: nothing listens on %s, but %s does"
                          % (target, proto, _describe(other[0]))}
    return {"accepted": False, "cause": "no_listener", "miss": "none", "listener": None,
            "reason": "%s: nothing listens on port %d/%s" % (target, port, proto)}
