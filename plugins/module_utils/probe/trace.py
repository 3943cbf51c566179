# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rising-TTL path probe to ``address:port`` (``traceroute -T -p PORT``, seed 003), with
the verdict spelled out: reached (open/closed), rejected by hop N (ICMP code, sender),
or silent after hop N (the last hop that answered).

One socket per TTL, all in flight at once, with ``IP_RECVERR``: the error queue gives
the exact ICMP type/code and the address of the hop that sent it, without raw sockets,
so the same code runs as root and as any user.  TCP probes are real ``connect()``
attempts: a TTL large enough to reach an open port completes a handshake, which is closed
at once.
"""

from __future__ import annotations

import errno as errno_mod
import selectors
import socket
import time

from ansible_collections.netdiag.reachability.plugins.module_utils._common import icmp as icmp_tables
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import pmtu
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import wire
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import BackendUnavailable, InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import parse_port
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import PROBE_PROTOCOLS as PROTOCOLS

IPV6_UNICAST_HOPS = getattr(socket, "IPV6_UNICAST_HOPS", 16)


def _resolve(address):
    try:
        infos = socket.getaddrinfo(address, None, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError("cannot resolve address %r: %s" % (address, exc))
    infos.sort(key=lambda i: 0 if i[0] == socket.AF_INET else 1)
    fam = infos[0][0]
    return (4 if fam == socket.AF_INET else 6), infos[0][4][0]


def _check(value, name, lo, hi, kind=int):
    try:
        num = kind(value)
    except (TypeError, ValueError):
        raise InputError("invalid %s %r: not a number" % (name, value))
    if isinstance(value, bool) or not lo <= num <= hi:
        raise InputError("invalid %s %r: must be between %s and %s" % (name, value, lo, hi))
    return num


class _Hop(object):
    __slots__ = ("ttl", "sock", "sent", "done", "result")

    def __init__(self, ttl):
        self.ttl = ttl
        self.sock = None
        self.sent = None
        self.done = False
        self.result = None


def _socket(family, protocol, ttl):
    fam = socket.AF_INET if family == 4 else socket.AF_INET6
    if protocol == "tcp":
        sock = socket.socket(fam, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, wire.TCP_SYNCNT, 1)
    elif protocol == "udp":
        sock = socket.socket(fam, socket.SOCK_DGRAM)
    else:
        proto = socket.IPPROTO_ICMP if family == 4 else socket.IPPROTO_ICMPV6
        try:
            sock = socket.socket(fam, socket.SOCK_DGRAM, proto)
        except OSError as exc:
            raise BackendUnavailable("an ICMP trace needs a ping socket, which this host refuses (%s): add "
                                     "the user's group to net.ipv4.ping_group_range or use protocol tcp/udp" % exc)
    sock.setblocking(False)
    if family == 4:
        sock.setsockopt(wire.SOL_IP, wire.IP_TTL, ttl)
        sock.setsockopt(wire.SOL_IP, wire.IP_RECVERR, 1)
    else:
        sock.setsockopt(wire.SOL_IPV6, IPV6_UNICAST_HOPS, ttl)
        sock.setsockopt(wire.SOL_IPV6, wire.IPV6_RECVERR, 1)
    return sock


def _read_errqueue(sock):
    try:
        data, anc, flags, addr = sock.recvmsg(512, 512, wire.MSG_ERRQUEUE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return None
    ee, ttl = wire.parse_errqueue_ancillary(anc)
    return ee


def _icmp_result(family, ee, rtt):
    name = icmp_tables.icmp_name(family, ee["icmp_type"], ee["icmp_code"])
    time_exceeded = ee["icmp_type"] == (11 if family == 4 else 3)
    return {"reply": "time-exceeded" if time_exceeded else "icmp", "address": ee["offender"],
            "icmp_type": ee["icmp_type"], "icmp_code": ee["icmp_code"], "icmp_name": name,
            "rtt_ms": rtt}


def trace(address, port=None, protocol="tcp", max_hops=30, timeout=2.0, first_hop=1, wave_size=3,
          max_silent_hops=6, mtu=False):
    """Trace the path to ``address`` (and ``port`` for tcp/udp).

    Returns ``{address, family, protocol, port, hops: [...], verdict, reached, state,
    last_responding_hop, blocking_hop, destination_ttl}``; each hop is
    ``{ttl, address, reply, icmp_type, icmp_code, icmp_name, rtt_ms}`` with ``reply`` one of
    ``time-exceeded``, ``icmp`` (an error other than time-exceeded), ``syn-ack``, ``rst``,
    ``udp``, ``echo-reply`` or None (no answer within ``timeout``).  With ``mtu``, also
    ``path_mtu`` (see :func:`pmtu.path_mtu`; UDP to ``port`` for a udp trace, else to 33434).
    """
    protocol = str(protocol).lower()
    if protocol not in PROTOCOLS:
        raise InputError("invalid protocol %r: expected one of %s" % (protocol, ", ".join(PROTOCOLS)))
    if protocol != "icmp":
        if port is None:
            raise InputError("a %s trace needs a port" % protocol)
        port = parse_port(port)
    max_hops = _check(max_hops, "max_hops", 1, 64)
    first_hop = _check(first_hop, "first_hop", 1, max_hops)
    timeout = _check(timeout, "timeout", 0.1, 60, float)
    wave_size = _check(wave_size, "wave_size", 1, 64)
    max_silent_hops = _check(max_silent_hops, "max_silent_hops", 1, 64)
    family, addr = _resolve(address)

    # TTLs go out in small waves, not all at once: routers rate-limit the ICMP errors they
    # send to one source (Linux: a burst of 6, then 1/s), so 30 simultaneous probes would
    # make most hops look silent.  Stop at the first answer from the end of the path, or
    # after max_silent_hops silent TTLs in a row.
    hops = []
    silent_run = 0
    ttl = first_hop
    while ttl <= max_hops:
        wave = [_Hop(t) for t in range(ttl, min(max_hops, ttl + wave_size - 1) + 1)]
        ttl += len(wave)
        if protocol == "icmp" and family == 4 and not _ping_socket_allowed():
            _trace_icmp_raw(addr, wave, timeout)
        else:
            _run_wave(wave, family, addr, protocol, port, timeout)
        hops.extend(wave)
        terminal = False
        for hop in wave:
            reply = (hop.result or {}).get("reply")
            if reply is None:
                silent_run += 1
            else:
                silent_run = 0
                if reply != "time-exceeded":
                    terminal = True
                    break
        if terminal or silent_run >= max_silent_hops:
            break
    result = _verdict(address, addr, family, protocol, port, hops)
    if mtu:
        result["path_mtu"] = pmtu.path_mtu(family, addr, port if protocol == "udp" else None, timeout=timeout)
    return result


def _run_wave(hops, family, addr, protocol, port, timeout):
    sel = selectors.DefaultSelector()
    try:
        for hop in hops:
            hop.sock = _socket(family, protocol, hop.ttl)
            hop.sent = time.monotonic()
            target = (addr, port or 0)
            if protocol == "tcp":
                err = hop.sock.connect_ex(target)
                if err not in (0, errno_mod.EINPROGRESS):
                    hop.result = {"reply": None, "local_error": errno_mod.errorcode.get(err, str(err))}
                    hop.done = True
                    continue
                sel.register(hop.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, hop)
            else:
                hop.sock.connect(target)
                payload = b"netdiag-trace-%d" % hop.ttl
                if protocol == "icmp":
                    ident_seq = hop.ttl
                    hdr = bytes([8 if family == 4 else 128, 0, 0, 0, 0, 0, ident_seq >> 8, ident_seq & 0xFF])
                    payload = hdr + payload
                try:
                    hop.sock.send(payload)
                except OSError:
                    pass  # errors show up in the error queue
                sel.register(hop.sock, selectors.EVENT_READ, hop)
        deadline = time.monotonic() + timeout
        while any(not h.done for h in hops) and time.monotonic() < deadline:
            for key, events in sel.select(max(0.0, deadline - time.monotonic())):
                _handle(key.data, family, protocol, events, sel)
    finally:
        for hop in hops:
            if hop.sock is not None:
                try:
                    sel.unregister(hop.sock)
                except (KeyError, ValueError):
                    pass
                hop.sock.close()
                hop.sock = None
        sel.close()


def _connected(sock):
    try:
        sock.getpeername()
        return True
    except OSError:
        return False


def _ping_socket_allowed():
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP).close()
        return True
    except OSError:
        return False


def _trace_icmp_raw(addr, hops, timeout):
    """ICMP echo with rising TTL on one raw socket (root): replies and errors are matched to
    the probe by the echo id/sequence (quoted in ICMP errors)."""
    import os
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except OSError as exc:
        raise BackendUnavailable("an ICMP trace needs a ping socket or root for a raw socket (%s): add the "
                                 "user's group to net.ipv4.ping_group_range or use protocol tcp/udp" % exc)
    ident = (os.getpid() ^ 0x5A5A) & 0xFFFF
    by_seq = {}
    try:
        sock.setblocking(False)
        for hop in hops:
            sock.setsockopt(wire.SOL_IP, wire.IP_TTL, hop.ttl)
            hop.sent = time.monotonic()
            by_seq[hop.ttl] = hop
            sock.sendto(wire.build_icmp_echo(ident, hop.ttl, b"netdiag-trace"), (addr, 0))
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        try:
            while any(not h.done for h in hops) and time.monotonic() < deadline:
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    continue
                while True:
                    try:
                        data = sock.recv(4096)
                    except (BlockingIOError, InterruptedError):
                        break
                    pkt = wire.parse_icmp4(data)
                    if pkt is None:
                        continue
                    if pkt["icmp_type"] == 0 and pkt.get("icmp_id") == ident:
                        hop = by_seq.get(pkt["icmp_seq"])
                        res = {"reply": "echo-reply"}
                    elif pkt.get("quoted") and pkt["quoted"].get("icmp_id") == ident \
                            and pkt["quoted"].get("dst") == addr:
                        hop = by_seq.get(pkt["quoted"]["icmp_seq"])
                        ee = {"icmp_type": pkt["icmp_type"], "icmp_code": pkt["icmp_code"], "offender": pkt["sender"]}
                        res = None
                    else:
                        continue
                    if hop is None or hop.done:
                        continue
                    rtt = round((time.monotonic() - hop.sent) * 1000.0, 3)
                    hop.result = _icmp_result(4, ee, rtt) if res is None else dict(res, rtt_ms=rtt)
                    hop.done = True
        finally:
            sel.close()
    finally:
        sock.close()


def _handle(hop, family, protocol, events, sel):
    if hop.done:
        return
    rtt = round((time.monotonic() - hop.sent) * 1000.0, 3)
    ee = _read_errqueue(hop.sock)
    if ee is not None and ee.get("origin") in (wire.SO_EE_ORIGIN_ICMP, 3):  # 3 = SO_EE_ORIGIN_ICMP6
        hop.result = _icmp_result(family, ee, rtt)
        hop.done = True
        return
    if protocol == "tcp":
        err = hop.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == 0 and events & selectors.EVENT_WRITE and _connected(hop.sock):
            hop.result = {"reply": "syn-ack", "rtt_ms": rtt}
            hop.done = True
        elif err == errno_mod.ETIMEDOUT or (err == 0 and not _connected(hop.sock)):
            hop.result = {"reply": None}
            hop.done = True
        elif err == errno_mod.ECONNREFUSED:
            hop.result = {"reply": "rst", "rtt_ms": rtt}
            hop.done = True
        elif err in (errno_mod.EHOSTUNREACH, errno_mod.ENETUNREACH) and ee is None:
            hop.result = {"reply": None, "local_error": errno_mod.errorcode.get(err, str(err))}
            hop.done = True
        if hop.done:
            sel.unregister(hop.sock)
        return
    try:
        data = hop.sock.recv(2048)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        return
    if protocol == "icmp":
        if data and data[0] in (0, 129):
            hop.result = {"reply": "echo-reply", "rtt_ms": rtt}
            hop.done = True
    else:
        hop.result = {"reply": "udp", "rtt_ms": rtt}
        hop.done = True


def _verdict(name, addr, family, protocol, port, hops):
    out_hops = []
    destination_ttl = None
    for hop in hops:
        res = hop.result or {"reply": None}
        entry = {"ttl": hop.ttl, "address": res.get("address"), "reply": res.get("reply"),
                 "icmp_type": res.get("icmp_type"), "icmp_code": res.get("icmp_code"),
                 "icmp_name": res.get("icmp_name"), "rtt_ms": res.get("rtt_ms")}
        if entry["reply"] in ("syn-ack", "rst", "udp", "echo-reply"):
            entry["address"] = addr
        if res.get("local_error"):
            entry["local_error"] = res["local_error"]
        out_hops.append(entry)
        if entry["reply"] not in (None, "time-exceeded"):
            destination_ttl = hop.ttl
            break  # higher TTLs say the same thing again
    result = {"target": name, "address": addr, "family": "ipv%d" % family, "protocol": protocol, "port": port,
              "hops": out_hops, "destination_ttl": destination_ttl, "reached": False, "state": None,
              "blocking_hop": None, "last_responding_hop": None, "verdict": None, "reason": None}
    answered = [h for h in out_hops if h["reply"] is not None]
    if answered:
        last = answered[-1]
        result["last_responding_hop"] = {"ttl": last["ttl"], "address": last["address"]}
    final = out_hops[-1] if destination_ttl is not None else None
    what = "%s:%s/%s" % (addr, port, protocol) if port else "%s (%s)" % (addr, protocol)
    if final is None:
        if answered:
            last = answered[-1]
            result["verdict"] = "silent_after_hop"
            result["blocking_hop"] = {"ttl": last["ttl"], "address": last["address"], "how": "silence"}
            result["reason"] = ("packets to %s die after hop %d (%s): nothing answered from TTL %d on"
                                % (what, last["ttl"], last["address"], last["ttl"] + 1))
        else:
            result["verdict"] = "silent"
            result["reason"] = "nothing answered any TTL towards %s" % what
        return result
    if final["reply"] in ("syn-ack", "rst", "udp", "echo-reply"):
        result["reached"] = True
        result["state"] = "closed" if final["reply"] == "rst" else "open"
        result["verdict"] = "reached"
        result["reason"] = "%s reached at hop %d: %s" % (what, final["ttl"], final["reply"])
        return result
    # an ICMP error other than time-exceeded
    sender = final["address"]
    by_target = sender == addr
    port_unreach = (final["icmp_type"], final["icmp_code"]) in ((3, 3), (1, 4))
    if by_target and port_unreach and protocol == "udp":
        result.update(reached=True, state="closed", verdict="reached",
                      reason="%s reached at hop %d: port unreachable from the target" % (what, final["ttl"]))
        return result
    # A router that rejects answered lower TTLs with time-exceeded: its position on the path is
    # the first TTL it answered, not the TTL of the probe it rejected.
    seen_at = [h["ttl"] for h in out_hops if h["address"] == sender and h["reply"] == "time-exceeded"]
    position = seen_at[0] if seen_at else final["ttl"]
    result["verdict"] = "rejected"
    result["reached"] = by_target
    result["blocking_hop"] = {"ttl": position, "address": sender, "how": final["icmp_name"],
                              "is_target": by_target, "probe_ttl": final["ttl"]}
    result["reason"] = ("%s rejected by %s (hop %d) with ICMP %d/%d (%s)"
                        % (what, "the target" if by_target else "router %s" % sender, position,
                           final["icmp_type"], final["icmp_code"], final["icmp_name"]))
    return result
