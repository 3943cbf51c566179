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
import os
import selectors
import socket
import time

from ansible_collections.netdiag.reachability.plugins.module_utils._common import icmp as icmp_tables
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import pmtu
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import scheduler
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


MAX_TARGETS = 1024


class _Flow(object):
    """One destination being traced: its address, where its TTL waves have got to, its hops."""
    __slots__ = ("index", "name", "family", "addr", "protocol", "port", "hops", "wave", "next_ttl", "silent_run",
                 "done", "raw")

    def __init__(self, index, name, family, addr, protocol, port, first_hop):
        self.index = index
        self.name = name
        self.family = family
        self.addr = addr
        self.protocol = protocol
        self.port = port
        self.hops = []
        self.wave = []
        self.next_ttl = first_hop
        self.silent_run = 0
        self.done = False
        self.raw = False      # ICMP echo on a raw socket (IPv4, no ping socket)


class _Hop(object):
    __slots__ = ("ttl", "sock", "sent", "done", "result", "flow", "seq", "deadline")

    def __init__(self, ttl, flow=None):
        self.ttl = ttl
        self.sock = None
        self.sent = None
        self.done = False
        self.result = None
        self.flow = flow
        self.seq = None
        self.deadline = None


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


def _options(max_hops, first_hop, timeout, wave_size, max_silent_hops, rate, parallelism, rate_limit_interval,
             rate_limit_budget):
    max_hops = _check(max_hops, "max_hops", 1, 64)
    return {"max_hops": max_hops, "first_hop": _check(first_hop, "first_hop", 1, max_hops),
            "timeout": _check(timeout, "timeout", 0.1, 60, float), "wave_size": _check(wave_size, "wave_size", 1, 64),
            "max_silent_hops": _check(max_silent_hops, "max_silent_hops", 1, 64),
            "rate": _check(rate, "rate", 1, 100000, float), "parallelism": _check(parallelism, "parallelism", 1, 4096),
            "rate_limit_interval": _check(rate_limit_interval, "rate_limit_interval", 0, 60, float),
            "rate_limit_budget": _check(rate_limit_budget, "rate_limit_budget", 0, 600, float)}


def _target(spec, where):
    if not isinstance(spec, dict) or not spec.get("address"):
        raise InputError("%s must be a dict with an address, got %r" % (where, spec))
    unknown = sorted(set(spec) - {"address", "port", "protocol"})
    if unknown:
        raise InputError("%s has unknown keys: %s (known: address, port, protocol)" % (where, ", ".join(unknown)))
    protocol = str(spec.get("protocol") or "tcp").lower()
    if protocol not in PROTOCOLS:
        raise InputError("invalid protocol %r: expected one of %s" % (protocol, ", ".join(PROTOCOLS)))
    port = spec.get("port")
    if protocol != "icmp":
        if port is None:
            raise InputError("a %s trace needs a port" % protocol)
        port = parse_port(port)
    else:
        port = None
    return str(spec["address"]), protocol, port


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
    out = trace_many([{"address": address, "port": port, "protocol": protocol}], max_hops=max_hops, timeout=timeout,
                     first_hop=first_hop, wave_size=wave_size, max_silent_hops=max_silent_hops, mtu=mtu, strict=True)
    return out["results"][0]


def trace_many(targets, max_hops=30, timeout=2.0, first_hop=1, wave_size=3, max_silent_hops=6, mtu=False,
               rate=1000.0, parallelism=256, rate_limit_interval=1.0, rate_limit_budget=10.0, strict=False):
    """Trace every target of ``targets`` (``[{address, port, protocol}]``) at once.

    Each target goes through the same TTL waves as :func:`trace` and gets the same result, but
    the waves of all targets are in flight together (at most ``parallelism`` probes, paced at
    ``rate`` per second), so the waits overlap: silent paths cost about one trace, not one each.
    The hops near this host are shared by many paths and rate-limit the ICMP errors they send
    here (Linux: a burst of 6, then one per ``icmp_ratelimit``): when a sender may have run out
    of tokens during a wave, the silent TTLs it could have answered are probed again once it has
    a token (see :class:`scheduler.IcmpBudget`), within ``rate_limit_budget`` seconds; a TTL
    still in doubt then is returned silent with ``rate_limited: true``.

    Returns ``{results: [...], elapsed_s, reprobes}``: one result per target, in order (a
    target whose name does not resolve gets ``{target, port, protocol, verdict: None, error}``;
    with ``strict`` it raises InputError).
    """
    start = time.monotonic()
    opts = _options(max_hops, first_hop, timeout, wave_size, max_silent_hops, rate, parallelism,
                    rate_limit_interval, rate_limit_budget)
    if not isinstance(targets, (list, tuple)) or not targets:
        raise InputError("targets must be a non-empty list of {address, port, protocol}")
    if len(targets) > MAX_TARGETS:
        raise InputError("at most %d targets per trace call, got %d" % (MAX_TARGETS, len(targets)))
    specs = [_target(t, "targets[%d]" % i) for i, t in enumerate(targets)]
    flows, by_key, errors = [], {}, {}
    icmp_ok = {}
    for name, protocol, port in specs:
        key = (name, protocol, port)
        if key in by_key or key in errors:
            continue
        try:
            family, addr = _resolve(name)
        except InputError as exc:
            if strict:
                raise
            errors[key] = str(exc)
            continue
        flow = _Flow(len(flows), name, family, addr, protocol, port, opts["first_hop"])
        if protocol == "icmp":
            if family not in icmp_ok:
                icmp_ok[family] = _icmp_backend(family)
            flow.raw, error = icmp_ok[family]
            if error:
                if strict:
                    raise BackendUnavailable(error)
                errors[key] = error   # the TCP and UDP traces go on
                continue
        by_key[key] = flow
        flows.append(flow)
    budget = scheduler.IcmpBudget(opts["rate_limit_interval"])
    settle = {"deadline": None, "reprobes": 0}
    while True:
        active = [f for f in flows if not f.done]
        if not active:
            break
        wave = []
        for f in active:
            size = _wave_size(f, opts)
            f.wave = [_Hop(t, f) for t in range(f.next_ttl, min(opts["max_hops"], f.next_ttl + size - 1) + 1)]
            f.next_ttl += len(f.wave)
            wave.extend(f.wave)
        wave.sort(key=lambda h: (h.ttl, h.flow.index))   # the near hops of every path first
        _exchange(wave, opts)
        saturated = _record(budget, wave)
        saturated.update(_shared_hop_silences(active))
        if saturated:
            _settle(active, saturated, budget, opts, settle)
        for f in active:
            _advance(f, opts)
    results = []
    for name, protocol, port in specs:
        key = (name, protocol, port)
        if key in errors:
            results.append({"target": name, "address": None, "family": None, "protocol": protocol, "port": port,
                            "verdict": None, "error": errors[key]})
            continue
        f = by_key[key]
        result = _verdict(f.name, f.addr, f.family, f.protocol, f.port, f.hops)
        if mtu:
            result["path_mtu"] = pmtu.path_mtu(f.family, f.addr, f.port if f.protocol == "udp" else None,
                                               timeout=opts["timeout"])
        results.append(result)
    return {"results": results, "elapsed_s": round(time.monotonic() - start, 3), "reprobes": settle["reprobes"]}


def _wave_size(flow, opts):
    """TTLs in the flow's next wave: ``wave_size``, or, on a path already silent for some TTLs, all
    the TTLs left before ``max_silent_hops`` ends it, so a silent tail costs one more timeout, not
    one per ``wave_size`` TTLs (the TTLs probed and the result are those of waves of ``wave_size``,
    but the last wave stops where the silent run does)."""
    if flow.silent_run:
        return max(opts["wave_size"], opts["max_silent_hops"] - flow.silent_run)
    return opts["wave_size"]


def _advance(flow, opts):
    """Take the flow's finished wave into its hops; stop at the first answer from the end of the
    path, or after ``max_silent_hops`` silent TTLs in a row (as a single trace does)."""
    flow.hops.extend(flow.wave)
    terminal = False
    for hop in flow.wave:
        reply = (hop.result or {}).get("reply")
        if reply is None:
            flow.silent_run += 1
        else:
            flow.silent_run = 0
            if reply != "time-exceeded":
                terminal = True
                break
    flow.wave = []
    if terminal or flow.silent_run >= opts["max_silent_hops"] or flow.next_ttl > opts["max_hops"]:
        flow.done = True


def _icmp_sender(hop):
    res = hop.result or {}
    if res.get("reply") in ("time-exceeded", "icmp") and res.get("address"):
        return res["address"]
    return None


def _record(budget, hops):
    """Feed the ICMP errors of ``hops`` to the budget in the order they came; the senders that may
    have run out of tokens meanwhile."""
    saturated = set()
    arrivals = []
    for hop in hops:
        sender = _icmp_sender(hop)
        if sender is not None:
            arrivals.append((hop.sent + (hop.result.get("rtt_ms") or 0.0) / 1000.0, sender))
    for when, sender in sorted(arrivals):
        if budget.receive(sender, when):
            saturated.add(sender)
    return saturated


def _prefix(flow, ttl):
    return tuple((h.result or {}).get("address") for h in flow.hops + flow.wave if h.ttl < ttl)


def _silent(hop):
    res = hop.result or {}
    return res.get("reply") is None and not res.get("local_error")


def _shared_hop_silences(flows):
    """Senders whose silence is suspicious: at some TTL of this wave one path got an ICMP error
    from them and another path, identical up to that TTL, got nothing (the same router most
    likely dropped its answer for want of tokens)."""
    answered = {}
    for f in flows:
        for hop in f.wave:
            sender = _icmp_sender(hop)
            if sender is not None:
                answered.setdefault((hop.ttl, _prefix(f, hop.ttl)), set()).add(sender)
    out = set()
    for f in flows:
        for hop in f.wave:
            if _silent(hop):
                out.update(answered.get((hop.ttl, _prefix(f, hop.ttl)), ()))
    return out


def _suspects(flow, saturated, answered_at):
    """The silent TTLs of the flow's wave that a saturated sender could have answered: one already on
    the path (it may reject higher TTLs), one that answered this TTL on another path, or any when
    nothing on the path answered yet.  TTLs above a final answer do not count."""
    seen = set(_icmp_sender(h) for h in flow.hops + flow.wave) - {None}
    out = []
    for hop in flow.wave:
        reply = (hop.result or {}).get("reply")
        if reply not in (None, "time-exceeded"):
            break
        if not _silent(hop):
            continue
        below = [h for h in flow.hops + flow.wave if h.ttl < hop.ttl and (h.result or {}).get("reply")]
        if (seen & saturated) or (answered_at.get(hop.ttl, set()) & saturated) or not below:
            out.append(hop)
    return out


def _settle(flows, saturated, budget, opts, settle):
    """Probe the doubtful silent TTLs again, a batch of flows at a time once every saturated
    sender had ``rate_limit_interval`` to earn a token (the first batch is all of them): a batch
    that brings no ICMP error back proves its silences (the batch doubles); one that does resolves
    what it answered and the rest waits for the next token (the batch drops to one flow)."""
    answered_at = {}
    for f in flows:
        for hop in f.wave:
            sender = _icmp_sender(hop)
            if sender is not None:
                answered_at.setdefault(hop.ttl, set()).add(sender)
    pending = [(f, _suspects(f, saturated, answered_at)) for f in flows]
    pending = [(f, hops) for f, hops in pending if hops]
    if not pending:
        return
    if settle["deadline"] is None:
        settle["deadline"] = time.monotonic() + opts["rate_limit_budget"]
    # once every saturated sender had an interval it has a token again, so a batch that brings no
    # ICMP error back proves all its silences: the first batch is every doubtful flow at once (most
    # silences are real drops, and then one round settles them all)
    batch = len(pending)
    while pending and time.monotonic() < settle["deadline"]:
        now = time.monotonic()
        wait = budget.wait(saturated, now)
        if wait > 0:
            if now + wait >= settle["deadline"]:
                break
            time.sleep(wait)
            continue
        chosen, pending = pending[:batch], pending[batch:]
        fresh = []
        for f, hops in chosen:
            for old in hops:
                new = _Hop(old.ttl, f)
                f.wave[f.wave.index(old)] = new
                fresh.append(new)
        settle["reprobes"] += len(fresh)
        _exchange(fresh, opts)
        more = _record(budget, fresh)
        senders = set(s for s in (_icmp_sender(h) for h in fresh) if s is not None)
        saturated.update(more | senders)
        if not senders:
            batch = min(batch * 2, 256)
            continue
        batch = 1
        again = []
        for f, dummy in chosen:
            left = [h for h in _suspects(f, saturated, answered_at) if h in fresh]
            if left:
                again.append((f, left))
        pending = again + pending
    for f, hops in pending:
        for hop in hops:
            hop.result = {"reply": None, "rate_limited": True}


def _send(hop, sel, raw):
    flow = hop.flow
    hop.sent = time.monotonic()
    if flow.raw:
        raw.send(hop)
        return
    hop.sock = _socket(flow.family, flow.protocol, hop.ttl)
    target = (flow.addr, flow.port or 0)
    if flow.protocol == "tcp":
        err = hop.sock.connect_ex(target)
        if err not in (0, errno_mod.EINPROGRESS):
            hop.result = {"reply": None, "local_error": errno_mod.errorcode.get(err, str(err))}
            hop.done = True
            return
        sel.register(hop.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, hop)
        return
    try:
        hop.sock.connect(target)
    except OSError as exc:  # no route from this host
        hop.result = {"reply": None, "local_error": errno_mod.errorcode.get(exc.errno, str(exc))}
        hop.done = True
        return
    payload = b"netdiag-trace-%d" % hop.ttl
    if flow.protocol == "icmp":
        ident_seq = hop.ttl
        hdr = bytes([8 if flow.family == 4 else 128, 0, 0, 0, 0, 0, ident_seq >> 8, ident_seq & 0xFF])
        payload = hdr + payload
    try:
        hop.sock.send(payload)
    except OSError:
        pass  # errors show up in the error queue
    sel.register(hop.sock, selectors.EVENT_READ, hop)


def _close(hop, sel):
    if hop.sock is not None:
        try:
            sel.unregister(hop.sock)
        except (KeyError, ValueError):
            pass
        hop.sock.close()
        hop.sock = None


def _exchange(hops, opts):
    """Send every hop's probe (paced, at most ``parallelism`` in flight) and wait for its answer
    up to ``timeout`` after its own send.  Fills ``hop.result``."""
    sel = selectors.DefaultSelector()
    raw = _RawIcmp(sel) if any(h.flow.raw for h in hops) else None
    queue = list(reversed(hops))
    inflight = {}
    interval = 1.0 / opts["rate"]
    next_send = time.monotonic()
    try:
        while queue or inflight:
            now = time.monotonic()
            while queue and len(inflight) < opts["parallelism"] and now >= next_send:
                hop = queue.pop()
                _send(hop, sel, raw)
                hop.deadline = hop.sent + opts["timeout"]
                if not hop.done:
                    inflight[id(hop)] = hop
                next_send = max(next_send + interval, now - 0.05)
                now = time.monotonic()
            if not queue and not inflight:
                break
            wake = min([h.deadline for h in inflight.values()] or [now + 0.05])
            if queue and len(inflight) < opts["parallelism"]:
                wake = min(wake, next_send)
            for key, events in sel.select(max(0.0, wake - time.monotonic())):
                if key.data is raw:
                    raw.receive()
                else:
                    _handle(key.data, key.data.flow.family, key.data.flow.protocol, events)
                    if key.data.done:
                        _close(key.data, sel)
            now = time.monotonic()
            for hid, hop in list(inflight.items()):
                if hop.done or now >= hop.deadline:
                    del inflight[hid]
                    hop.done = True
                    _close(hop, sel)
    finally:
        for hop in hops:
            _close(hop, sel)
        if raw is not None:
            raw.close()
        sel.close()


def _connected(sock):
    try:
        sock.getpeername()
        return True
    except OSError:
        return False


def _icmp_backend(family):
    """(raw, error) for ICMP traces of ``family``: a ping socket, else (IPv4) a raw socket, else why not."""
    fam, proto = (socket.AF_INET, socket.IPPROTO_ICMP) if family == 4 else (socket.AF_INET6, socket.IPPROTO_ICMPV6)
    try:
        socket.socket(fam, socket.SOCK_DGRAM, proto).close()
        return False, None
    except OSError as exc:
        why = exc
    if family == 4:
        try:
            socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
            return True, None
        except OSError as exc:
            why = exc
    return False, ("an ICMP trace needs a ping socket%s (%s): add the user's group to net.ipv4.ping_group_range or "
                   "use protocol tcp/udp" % (" or root for a raw socket" if family == 4 else "", why))


class _RawIcmp(object):
    """ICMP echo with rising TTL on one raw socket (root, IPv4): replies and errors are matched to
    the probe by the echo id/sequence (quoted in ICMP errors) and the destination."""

    def __init__(self, sel):
        try:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        except OSError as exc:
            raise BackendUnavailable("an ICMP trace needs a ping socket or root for a raw socket (%s): add the "
                                     "user's group to net.ipv4.ping_group_range or use protocol tcp/udp" % exc)
        self.sock.setblocking(False)
        self.ident = (os.getpid() ^ 0x5A5A) & 0xFFFF
        self.by_seq = {}
        self.next_seq = 1
        sel.register(self.sock, selectors.EVENT_READ, self)

    def send(self, hop):
        hop.seq = self.next_seq
        self.next_seq = (self.next_seq % 0xFFFF) + 1
        self.by_seq[hop.seq] = hop
        self.sock.setsockopt(wire.SOL_IP, wire.IP_TTL, hop.ttl)
        self.sock.sendto(wire.build_icmp_echo(self.ident, hop.seq, b"netdiag-trace"), (hop.flow.addr, 0))

    def receive(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            pkt = wire.parse_icmp4(data)
            if pkt is None:
                continue
            ee = None
            if pkt["icmp_type"] == 0 and pkt.get("icmp_id") == self.ident:
                hop = self.by_seq.get(pkt["icmp_seq"])
                if hop is None or pkt.get("sender") not in (None, hop.flow.addr):
                    continue
            elif pkt.get("quoted") and pkt["quoted"].get("icmp_id") == self.ident:
                hop = self.by_seq.get(pkt["quoted"]["icmp_seq"])
                if hop is None or pkt["quoted"].get("dst") != hop.flow.addr:
                    continue
                ee = {"icmp_type": pkt["icmp_type"], "icmp_code": pkt["icmp_code"], "offender": pkt["sender"]}
            else:
                continue
            if hop.done:
                continue
            rtt = round((time.monotonic() - hop.sent) * 1000.0, 3)
            hop.result = {"reply": "echo-reply", "rtt_ms": rtt} if ee is None else _icmp_result(4, ee, rtt)
            hop.done = True

    def close(self):
        self.sock.close()


def _handle(hop, family, protocol, events):
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
        if res.get("rate_limited"):
            entry["rate_limited"] = True
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
