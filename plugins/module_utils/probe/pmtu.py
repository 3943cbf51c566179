# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Path MTU towards an address: the largest packet that crosses the path unfragmented, and
who said so.

UDP datagrams with the DF bit set (``IP_PMTUDISC_PROBE``: sent at the size asked, whatever
the kernel has cached) and ``IP_RECVERR``: a router whose next link is too small answers ICMP
3/4 "fragmentation needed" (ICMPv6 2 "packet too big") with that link's MTU, which the error
queue hands over with the router's address.  The destination's answer (ICMP port unreachable,
or a datagram back) proves a size crossed the whole path.  When a size gets no answer at all
while a smaller one does, something on the path drops big packets without saying so (a PMTU
black hole): the sizes in between are searched to bound it.  No raw socket, so it runs as any
user.  As with any traffic, the kernel caches an MTU a router reported (for about 10 minutes).
"""

from __future__ import annotations

import errno as errno_mod
import select
import socket
import time

from ansible_collections.netdiag.reachability.plugins.module_utils.probe import wire
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import parse_port

IP_MTU_DISCOVER, IP_MTU, IP_PMTUDISC_PROBE = wire.IP_MTU_DISCOVER, wire.IP_MTU, wire.IP_PMTUDISC_PROBE
IPV6_MTU_DISCOVER, IPV6_MTU, IPV6_PMTUDISC_PROBE = wire.IPV6_MTU_DISCOVER, wire.IPV6_MTU, wire.IPV6_PMTUDISC_PROBE
DEFAULT_PORT = 33434          # traceroute's first UDP port: nothing listens, the target answers 3/3
MIN_MTU = {4: 576, 6: 1280}   # what every path must carry (RFC 791 / RFC 8200)
HEADERS = {4: 28, 6: 48}      # IP + UDP header bytes


def path_mtu(family, addr, port=None, timeout=1.0, max_probes=24):
    """Probe the path MTU to ``addr`` (already resolved, ``family`` 4 or 6).

    Returns ``{mtu, local_mtu, verdict, reason, reported_by, probes}``: ``verdict`` is
    ``confirmed`` (a packet of ``mtu`` bytes got an answer from the destination),
    ``black_hole`` (``mtu`` got an answer, larger sizes vanished without an ICMP error),
    ``reported`` (a router reported ``mtu`` but nothing confirmed it end to end, e.g. UDP is
    filtered further on) or ``unknown``.
    """
    port = DEFAULT_PORT if port is None else parse_port(port)
    if family not in (4, 6):
        raise InputError("invalid family %r" % (family,))
    fam = socket.AF_INET if family == 4 else socket.AF_INET6
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    probes, reported = [], []
    try:
        if family == 4:
            sock.setsockopt(wire.SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
            sock.setsockopt(wire.SOL_IP, wire.IP_RECVERR, 1)
        else:
            sock.setsockopt(wire.SOL_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_PROBE)
            sock.setsockopt(wire.SOL_IPV6, wire.IPV6_RECVERR, 1)
        sock.connect((addr, port))
        local = _local_mtu(sock, family)
        size, best, smallest_silent = local, None, None
        while len(probes) < max_probes:
            outcome = _send(sock, family, addr, size, timeout)
            if outcome["reply"] is None and best is not None and len(probes) < max_probes - 1:
                # the destination rate-limits its ICMP errors (a burst of 6, then 1/s): silence
                # after an answer is only believed when a second try is silent too
                probes.append(dict(outcome, size=size, retried=True))
                outcome = _send(sock, family, addr, size, timeout)
            probes.append(dict(outcome, size=size))
            kind = outcome["reply"]
            if kind == "too-big":
                reported.append({"address": outcome["address"], "mtu": outcome["mtu"]})
                if not outcome["mtu"] or outcome["mtu"] >= size:
                    break   # a router that reports nothing usable: stop, say what we have
                size = max(outcome["mtu"], MIN_MTU[family])
                continue
            if kind == "local-too-big":
                if not outcome["mtu"] or outcome["mtu"] >= size:
                    break
                size = outcome["mtu"]
                continue
            if kind in ("answer", "icmp"):
                best = size
            else:
                smallest_silent = size
            # bisect between the largest size that got through and the smallest that vanished
            if best is not None and (smallest_silent is None or smallest_silent - best <= 1):
                break
            if best is None:
                nxt = MIN_MTU[family] if size > MIN_MTU[family] else None
            else:
                nxt = (best + smallest_silent) // 2
            if nxt is None or nxt == size:
                break
            size = nxt
    finally:
        sock.close()
    return _verdict(family, addr, port, local, best, smallest_silent, reported, probes)


def _local_mtu(sock, family):
    """The MTU of the interface the route uses (PROBE mode sends up to it)."""
    level, opt = (wire.SOL_IP, IP_MTU) if family == 4 else (wire.SOL_IPV6, IPV6_MTU)
    # a datagram larger than the interface fails with EMSGSIZE and queues the device MTU
    try:
        sock.send(b"\0" * 65000)
    except OSError as exc:
        if exc.errno == errno_mod.EMSGSIZE:
            ee = _errqueue(sock)
            if ee and ee.get("info"):
                return ee["info"]
    try:
        return sock.getsockopt(level, opt)
    except OSError:
        return 1500


def _errqueue(sock):
    try:
        _data, anc, _flags, _addr = sock.recvmsg(2048, 512, wire.MSG_ERRQUEUE)
    except OSError:
        return None
    ee, _ttl = wire.parse_errqueue_ancillary(anc)
    return ee


def _drain(sock):
    while _errqueue(sock) is not None:
        pass
    try:
        while sock.recv(65535, socket.MSG_DONTWAIT):
            pass
    except OSError:
        pass


def _send(sock, family, addr, size, timeout):
    _drain(sock)
    payload = b"\0" * max(0, size - HEADERS[family])
    started = time.monotonic()
    try:
        sock.send(payload)
    except OSError as exc:
        if exc.errno == errno_mod.EMSGSIZE:
            ee = _errqueue(sock)
            return {"reply": "local-too-big", "address": None, "mtu": (ee or {}).get("info") or None, "rtt_ms": 0.0}
        if exc.errno not in (errno_mod.ECONNREFUSED, errno_mod.EHOSTUNREACH, errno_mod.ENETUNREACH):
            raise
    deadline = started + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return {"reply": None, "address": None, "mtu": None, "rtt_ms": None}
        # POLLERR: something on the error queue; POLLIN: a datagram back
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR)
        events = poller.poll(left * 1000)
        rtt = round((time.monotonic() - started) * 1000, 3)
        for _fd, ev in events:
            if ev & select.POLLERR:
                ee = _errqueue(sock)
                if ee is None:
                    continue
                if ee["origin"] == wire.SO_EE_ORIGIN_LOCAL:
                    return {"reply": "local-too-big", "address": None, "mtu": ee.get("info") or None, "rtt_ms": rtt}
                too_big = (ee["icmp_type"], ee["icmp_code"]) == ((3, 4) if family == 4 else (2, 0))
                return {"reply": "too-big" if too_big else "icmp", "address": ee["offender"],
                        "icmp_type": ee["icmp_type"], "icmp_code": ee["icmp_code"],
                        "mtu": ee.get("info") if too_big else None, "rtt_ms": rtt}
            if ev & select.POLLIN:
                try:
                    sock.recv(65535, socket.MSG_DONTWAIT)
                except OSError:
                    continue
                return {"reply": "answer", "address": addr, "mtu": None, "rtt_ms": rtt}


def _verdict(family, addr, port, local, best, smallest_silent, reported, probes):
    out = {"mtu": None, "local_mtu": local, "verdict": "unknown", "reason": None, "reported_by": reported,
           "udp_port": port, "probes": probes}
    lowest = min((r["mtu"] for r in reported if r.get("mtu")), default=None)
    if best is not None:
        out["mtu"] = best
        answered_by = [p for p in probes if p["size"] == best and p["reply"] in ("answer", "icmp")][-1]
        who = "the destination" if answered_by.get("address") == addr else answered_by.get("address") or addr
        if smallest_silent is not None and smallest_silent > best:
            out["verdict"] = "black_hole"
            out["reason"] = ("packets of %d bytes cross the path to %s (answered by %s) but %d-byte packets "
                             "vanish without an ICMP 'fragmentation needed': a PMTU black hole between %d and %d bytes"
                             % (best, addr, who, smallest_silent, best, smallest_silent))
        else:
            out["verdict"] = "confirmed"
            via = (" (reported by %s)" % ", ".join("%s: %d" % (r["address"], r["mtu"]) for r in reported)) if reported else ""
            out["reason"] = "path MTU to %s is %d bytes%s, confirmed by an answer from %s" % (addr, best, via, who)
    elif lowest is not None:
        out["mtu"] = lowest
        out["verdict"] = "reported"
        out["reason"] = ("router(s) report a path MTU of %d bytes to %s; no size got an answer from the destination "
                         "(UDP to port %d may be filtered), so it is not confirmed end to end" % (lowest, addr, port))
    else:
        out["reason"] = ("no answer from %s to UDP port %d at any size, and no router reported a smaller MTU: "
                         "the path MTU is not known (UDP may be filtered)" % (addr, port))
    return out
