# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe ``address:port/protocol`` targets from this host and classify them with nmap's
semantics, keeping the evidence (reply kind, ICMP type/code and name, sender, TTL, rtt).

Two engines, one scheduler:

* ``raw`` (root / CAP_NET_RAW, IPv4): TCP SYNs sent on a raw socket from one reserved
  source port, replies read from raw TCP and ICMP sockets, ICMP errors matched to the
  probe through the quoted header.  UDP datagrams go out of an ordinary socket bound to
  a reserved port; ICMP echo on the raw ICMP socket.  Sees reply TTLs of everything.
* ``connect`` (any user): non-blocking ``connect()`` / connected UDP sockets with
  ``IP_RECVERR``; the error queue yields the exact ICMP type, code, sender and TTL.
  It cannot see the TTL of a SYN-ACK or RST (``reply.ttl`` is null for those), and
  ICMP echo needs ``net.ipv4.ping_group_range`` to include the user's group.

Probes are in flight concurrently (``parallelism``), paced (``rate`` packets/s), bounded
(``timeout``, ``retries``, ``max_probes``).  ICMP error rate limiting on the far side
(Linux: a burst of 6 then one per ``icmp_ratelimit`` ms per destination) is handled by a
settle phase: silent ports of a target that sent ICMP errors are re-probed after the
target's token bucket had time to refill; a batch that comes back with no ICMP at all
proves its silent ports silent.  Ports still ambiguous when ``rate_limit_budget`` runs
out are returned with ``rate_limited: true``.
"""

from __future__ import annotations

import errno as errno_mod
import math
import os
import random
import selectors
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.netdiag.reachability.plugins.module_utils._common import icmp as icmp_tables
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import PROBE_PROTOCOLS as PROTOCOLS, STATES, classify
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import wire
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    BackendUnavailable,
    InputError,
)
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import expand_port_specs

ENGINES = ("auto", "raw", "connect")
APP_CHECKS = ("none", "banner", "http")

DEFAULTS = {
    "timeout": 1.0,          # seconds to wait for a reply to one attempt (upper bound)
    "retries": 1,            # re-sends of a silent probe
    "rate": 2000,            # packets per second, all targets together
    "parallelism": 256,      # probes in flight at once
    "max_probes": 10000,     # targets x ports per call
    "rate_limit_interval": 1.0,  # Linux net.ipv4.icmp_ratelimit default (1000 ms)
    "rate_limit_budget": 2.0,    # seconds spent re-probing possibly rate-limited ports
    "app_check": "none",
    "app_timeout": 2.0,
    "engine": "auto",
    "family": "auto",
}

# --------------------------------------------------------------------------------------
# Input validation


def _number(value, name, minimum, maximum=None, integer=False):
    if isinstance(value, bool):
        raise InputError("invalid %s %r: not a number" % (name, value))
    try:
        num = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise InputError("invalid %s %r: not a number" % (name, value))
    if integer and isinstance(value, float) and value != num:
        raise InputError("invalid %s %r: not a whole number" % (name, value))
    if not math.isfinite(num):  # NaN / infinity: no bound check would catch them
        raise InputError("invalid %s %r: not a finite number" % (name, value))
    if num < minimum or (maximum is not None and num > maximum):
        bounds = "at least %s" % minimum if maximum is None else "between %s and %s" % (minimum, maximum)
        raise InputError("invalid %s %r: must be %s" % (name, value, bounds))
    return num


def normalize_options(options=None):
    """Fill defaults and validate the tuning options; returns a new dict."""
    opts = dict(DEFAULTS)
    for key, value in (options or {}).items():
        if key not in DEFAULTS:
            raise InputError("unknown probe option %r (expected one of %s)" % (key, ", ".join(sorted(DEFAULTS))))
        if value is not None:
            opts[key] = value
    opts["timeout"] = _number(opts["timeout"], "timeout", 0.01, 300)
    opts["retries"] = _number(opts["retries"], "retries", 0, 10, integer=True)
    opts["rate"] = _number(opts["rate"], "rate", 1, 100000)
    opts["parallelism"] = _number(opts["parallelism"], "parallelism", 1, 4096, integer=True)
    opts["max_probes"] = _number(opts["max_probes"], "max_probes", 1, 1000000, integer=True)
    opts["rate_limit_interval"] = _number(opts["rate_limit_interval"], "rate_limit_interval", 0.01, 60)
    opts["rate_limit_budget"] = _number(opts["rate_limit_budget"], "rate_limit_budget", 0, 3600)
    opts["app_timeout"] = _number(opts["app_timeout"], "app_timeout", 0.01, 300)
    for key, allowed in (("engine", ENGINES), ("app_check", APP_CHECKS), ("family", ("auto", "ipv4", "ipv6"))):
        if opts[key] not in allowed:
            raise InputError("invalid %s %r (expected one of %s)" % (key, opts[key], ", ".join(allowed)))
    return opts


def resolve(host, family="auto"):
    """Resolve an address or name to ``(address, family 4|6)``; InputError naming it."""
    if not isinstance(host, str) or not host.strip():
        raise InputError("invalid target host %r: expected an address or a name" % (host,))
    host = host.strip()
    fam = {"auto": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}[family]
    try:
        infos = socket.getaddrinfo(host, None, fam, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError("cannot resolve target host %r: %s" % (host, exc))
    # Prefer IPv4 when both exist and the user did not choose (the lab and most
    # firewall rules are IPv4); deterministic either way.
    infos.sort(key=lambda i: 0 if i[0] == socket.AF_INET else 1)
    af, _t, _p, _c, sockaddr = infos[0]
    return sockaddr[0], (4 if af == socket.AF_INET else 6)


def expand_targets(targets, max_probes=DEFAULTS["max_probes"], family="auto"):
    """Validate ``targets`` (list of ``{host, ports, protocol}``) and expand them into
    probe descriptions ``{target, address, family, port, protocol}`` (``port`` None for
    icmp).  Names are resolved once each; bad values raise InputError naming them."""
    if not isinstance(targets, (list, tuple)) or not targets:
        raise InputError("targets must be a non-empty list, got %r" % (targets,))
    out = []
    seen = set()
    resolved = {}
    for index, target in enumerate(targets):
        if isinstance(target, str):
            target = {"host": target}
        if not isinstance(target, dict):
            raise InputError("invalid target #%d %r: expected a dict with host, ports, protocol" % (index + 1, target))
        unknown = set(target) - {"host", "ports", "protocol"}
        if unknown:
            raise InputError("invalid target #%d: unknown key(s) %s" % (index + 1, ", ".join(sorted(unknown))))
        protocol = str(target.get("protocol") or "tcp").strip().lower()
        if protocol not in PROTOCOLS:
            raise InputError("invalid protocol %r for target %r (expected one of %s)"
                             % (target.get("protocol"), target.get("host"), ", ".join(PROTOCOLS)))
        ports = target.get("ports")
        if ports is None:
            ports = []
        elif not isinstance(ports, (list, tuple)):
            ports = [ports]
        host = target.get("host")
        if protocol == "icmp":
            if ports:
                raise InputError("target %r: protocol icmp takes no ports (got %r)" % (host, list(ports)))
            pairs = [(None, "icmp")]
        else:
            if not ports:
                raise InputError("target %r: protocol %s needs ports" % (host, protocol))
            pairs = expand_port_specs([str(p) for p in ports], default_protocol=protocol, limit=max_probes)
            for _port, proto in pairs:
                if proto not in ("tcp", "udp"):
                    raise InputError("target %r: cannot probe protocol %r (expected tcp or udp in port specs)"
                                     % (host, proto))
        key_host = (host.strip() if isinstance(host, str) else host)
        if key_host not in resolved:
            resolved[key_host] = resolve(host, family)
        address, fam = resolved[key_host]
        for port, proto in pairs:
            key = (address, port, proto)
            if key in seen:
                continue
            seen.add(key)
            out.append({"target": key_host, "address": address, "family": fam, "port": port, "protocol": proto})
            if len(out) > max_probes:
                raise InputError("targets expand to more than max_probes=%d probes; raise max_probes or probe fewer ports"
                                 % max_probes)
    return out


# --------------------------------------------------------------------------------------
# Probes and the scheduler


class Probe(object):
    """One target/port/protocol being probed and what came back."""

    def __init__(self, desc, index):
        self.index = index
        self.target = desc["target"]
        self.address = desc["address"]
        self.family = desc["family"]
        self.port = desc["port"]
        self.protocol = desc["protocol"]
        self.attempts = 0
        self.sent_at = None
        self.deadline = None
        self.reply = None
        self.rtt = None
        self.rate_limited = False
        self.engine = None
        self.sock = None      # per-probe socket (connect engine)
        self.app = None

    @property
    def key(self):
        return (self.address, self.port, self.protocol)

    def record(self, reply, now):
        """Keep the first reply (a later copy of a retransmission changes nothing)."""
        if self.reply is not None:
            return
        if reply["kind"] == "icmp":
            reply.setdefault("icmp_name", icmp_tables.icmp_name(self.family, reply["icmp_type"], reply["icmp_code"]))
        reply.setdefault("sender", self.address)
        reply["sender_is_target"] = reply["sender"] == self.address
        reply.setdefault("ttl", None)
        self.reply = reply
        if self.sent_at is not None:
            self.rtt = max(0.0, now - self.sent_at)

    def result(self):
        state, reason = classify(self.protocol, self.reply, self.family)
        reply = None
        if self.reply is not None:
            reply = {
                "kind": self.reply["kind"],
                "icmp_type": self.reply.get("icmp_type"),
                "icmp_code": self.reply.get("icmp_code"),
                "icmp_name": self.reply.get("icmp_name"),
                "sender": self.reply["sender"],
                "sender_is_target": self.reply["sender_is_target"],
                "ttl": self.reply["ttl"],
            }
        out = {
            "target": self.target,
            "address": self.address,
            "family": "ipv%d" % self.family,
            "port": self.port,
            "protocol": self.protocol,
            "state": state,
            "reason": reason,
            "reply": reply,
            "rtt_ms": None if self.rtt is None else round(self.rtt * 1000.0, 3),
            "retries": max(0, self.attempts - 1),
            "rate_limited": bool(self.rate_limited and self.reply is None),
            "engine": self.engine,
        }
        if self.app is not None:
            out["app"] = self.app
        return out


class _RttStats(object):
    """Per-address smoothed RTT (RFC 6298) to shorten waits once replies are seen."""

    MIN_TIMEOUT = 0.2

    def __init__(self, max_timeout):
        self.max_timeout = max_timeout
        self.srtt = {}
        self.rttvar = {}

    def sample(self, address, rtt):
        if address not in self.srtt:
            self.srtt[address] = rtt
            self.rttvar[address] = rtt / 2.0
        else:
            self.rttvar[address] = 0.75 * self.rttvar[address] + 0.25 * abs(self.srtt[address] - rtt)
            self.srtt[address] = 0.875 * self.srtt[address] + 0.125 * rtt

    def timeout(self, address):
        if address not in self.srtt:
            return self.max_timeout
        rto = self.srtt[address] + 4 * self.rttvar[address]
        return min(self.max_timeout, max(self.MIN_TIMEOUT, rto * 2))


def run_pass(engine, probes, opts, rtt, retries):
    """Send every probe (re-sending silent ones up to ``retries`` times) and collect
    replies until each has one or has timed out.  Returns nothing; fills the probes."""
    interval = 1.0 / opts["rate"]
    parallelism = min(opts["parallelism"], engine.max_parallel)
    queue = list(reversed(probes))   # pop() from the end = first probe first
    inflight = {}
    next_send = time.monotonic()
    sel = engine.selector
    while queue or inflight:
        now = time.monotonic()
        while queue and len(inflight) < parallelism and now >= next_send:
            probe = queue.pop()
            if probe.reply is not None:
                continue
            probe.attempts += 1
            probe.sent_at = now
            probe.deadline = now + rtt.timeout(probe.address)
            try:
                engine.send(probe)
            except OSError as exc:
                reply = engine.local_error(probe, exc)
                if reply is None:
                    raise
                probe.record(reply, now)
                continue
            inflight[id(probe)] = probe
            next_send = max(next_send + interval, now - 0.05)  # allow a tiny burst after a stall
            now = time.monotonic()
        if not inflight and not queue:
            break
        wake = min([p.deadline for p in inflight.values()] or [now + 0.05])
        if queue and len(inflight) < parallelism:
            wake = min(wake, next_send)
        timeout = max(0.0, wake - time.monotonic())
        for key, _mask in sel.select(timeout):
            for probe, reply in engine.receive(key):
                now = time.monotonic()
                if probe.reply is None:
                    probe.record(reply, now)
                    if probe.rtt is not None and probe.attempts == 1:
                        rtt.sample(probe.address, probe.rtt)
                if id(probe) in inflight:
                    del inflight[id(probe)]
                    engine.finish(probe)
        now = time.monotonic()
        for pid, probe in list(inflight.items()):
            if probe.reply is not None:
                del inflight[pid]
                engine.finish(probe)
            elif now >= probe.deadline:
                del inflight[pid]
                engine.finish(probe)
                if probe.attempts <= retries:
                    queue.append(probe)
    # late replies still queued in the sockets
    for key, _mask in sel.select(0):
        for probe, reply in engine.receive(key):
            if probe.reply is None:
                probe.record(reply, time.monotonic())


def _icmp_error(probe):
    return probe.reply is not None and probe.reply["kind"] == "icmp" and probe.reply.get("icmp_type") not in (0, 129)


def settle_rate_limited(engine, probes, opts, rtt, last_icmp):
    """Re-probe silent TCP/UDP ports of addresses that sent ICMP errors.

    ``last_icmp`` maps address -> monotonic time of the last ICMP error seen from probing
    it.  After ``rate_limit_interval`` without ICMP, a Linux sender has at least one token
    again; a batch answered by no ICMP at all therefore proves its silent ports silent.
    Ports left when the budget runs out are marked ``rate_limited``.
    """
    pools = {}
    for probe in probes:
        if probe.reply is None and probe.protocol in ("tcp", "udp") and probe.address in last_icmp:
            pools.setdefault(probe.address, []).append(probe)
    if not pools:
        return
    deadline = time.monotonic() + opts["rate_limit_budget"]
    batch = dict((addr, 1) for addr in pools)
    interval = opts["rate_limit_interval"]
    while pools and time.monotonic() < deadline:
        now = time.monotonic()
        ready = [a for a in pools if now - last_icmp[a] >= interval]
        if not ready:
            wait = min(last_icmp[a] + interval for a in pools) - now
            if now + wait >= deadline:
                break
            time.sleep(max(0.0, wait))
            continue
        sending = {}
        for addr in ready:
            sending[addr] = pools[addr][:batch[addr]]
        run_pass(engine, [p for group in sending.values() for p in group], opts, rtt, retries=0)
        now = time.monotonic()
        for addr, group in sending.items():
            answered_icmp = [p for p in group if _icmp_error(p)]
            resolved = set(id(p) for p in group if p.reply is not None)
            if not answered_icmp:
                # no ICMP while a token was available: the silent ones are really silent
                resolved.update(id(p) for p in group)
                batch[addr] = min(batch[addr] * 2, 256)
            else:
                last_icmp[addr] = now
                batch[addr] = 1
            pools[addr] = [p for p in pools[addr] if id(p) not in resolved]
            if not pools[addr]:
                del pools[addr]
    for group in pools.values():
        for probe in group:
            probe.rate_limited = True


# --------------------------------------------------------------------------------------
# Engines


def _route_source(address, family):
    """Source address the kernel would use towards ``address`` (no packet is sent)."""
    sock = socket.socket(socket.AF_INET if family == 4 else socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.connect((address, 9))
        return sock.getsockname()[0]
    finally:
        sock.close()


_LOCAL_ERRORS = {
    errno_mod.ENETUNREACH: "no-route",
    errno_mod.EHOSTUNREACH: "no-route",
    errno_mod.EACCES: "local-prohibited",
    errno_mod.EPERM: "local-prohibited",
}


def _local_reply(exc):
    """A send/connect that failed locally (no route, local firewall): an ICMP-like
    reply from this host, so it classifies as unreachable/filtered with evidence."""
    if exc.errno in (errno_mod.ENETUNREACH, errno_mod.EHOSTUNREACH):
        return {"kind": "icmp", "icmp_type": 3, "icmp_code": 0 if exc.errno == errno_mod.ENETUNREACH else 1,
                "sender": "local", "ttl": None, "local_errno": errno_mod.errorcode.get(exc.errno)}
    if exc.errno in (errno_mod.EACCES, errno_mod.EPERM):
        return {"kind": "icmp", "icmp_type": 3, "icmp_code": 13, "sender": "local", "ttl": None,
                "local_errno": errno_mod.errorcode.get(exc.errno)}
    return None


class ConnectEngine(object):
    """Unprivileged engine: connect()/UDP sockets with IP_RECVERR."""

    name = "connect"

    def __init__(self, opts):
        self.selector = selectors.DefaultSelector()
        try:
            import resource
            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ImportError, ValueError, OSError):
            soft = 1024
        self.max_parallel = max(8, min(4096, soft - 64)) if soft > 0 else 1024
        self.ident = os.getpid() & 0xFFFF

    def close(self):
        for key in list(self.selector.get_map().values()):
            self._drop(key.data)
        self.selector.close()

    def _drop(self, probe):
        if probe.sock is not None:
            try:
                self.selector.unregister(probe.sock)
            except (KeyError, ValueError):
                pass
            probe.sock.close()
            probe.sock = None

    def _new_socket(self, probe):
        fam = socket.AF_INET if probe.family == 4 else socket.AF_INET6
        if probe.protocol == "tcp":
            sock = socket.socket(fam, socket.SOCK_STREAM)
        elif probe.protocol == "udp":
            sock = socket.socket(fam, socket.SOCK_DGRAM)
        else:
            proto = socket.IPPROTO_ICMP if probe.family == 4 else socket.IPPROTO_ICMPV6
            try:
                sock = socket.socket(fam, socket.SOCK_DGRAM, proto)
            except OSError as exc:
                raise BackendUnavailable(
                    "ICMP echo without root needs a ping socket, which this host refuses (%s): add the "
                    "user's group to net.ipv4.ping_group_range or run as root" % exc)
        sock.setblocking(False)
        if probe.family == 4:
            sock.setsockopt(wire.SOL_IP, wire.IP_RECVERR, 1)
            sock.setsockopt(wire.SOL_IP, wire.IP_RECVTTL, 1)
        else:
            sock.setsockopt(wire.SOL_IPV6, wire.IPV6_RECVERR, 1)
            sock.setsockopt(wire.SOL_IPV6, wire.IPV6_RECVHOPLIMIT, 1)
        return sock

    def local_error(self, probe, exc):
        self._drop(probe)
        return _local_reply(exc)

    def send(self, probe):
        probe.engine = self.name
        if probe.protocol == "tcp":
            self._drop(probe)       # every attempt is a fresh connect()
            sock = self._new_socket(probe)
            probe.sock = sock
            try:
                sock.setsockopt(socket.IPPROTO_TCP, wire.TCP_SYNCNT, 1)
            except OSError:
                pass
            rc = sock.connect_ex((probe.address, probe.port))
            if rc not in (0, errno_mod.EINPROGRESS):
                raise OSError(rc, os.strerror(rc))
            self.selector.register(sock, selectors.EVENT_WRITE | selectors.EVENT_READ, probe)
            return
        if probe.sock is None:
            sock = self._new_socket(probe)
            probe.sock = sock
            sock.connect((probe.address, probe.port or 0))
            self.selector.register(sock, selectors.EVENT_READ, probe)
        if probe.protocol == "udp":
            probe.sock.send(udp_payload(probe.port))
        else:
            probe.sock.send(wire.build_icmp_echo(self.ident, probe.attempts))

    def finish(self, probe):
        self._drop(probe)

    def _errqueue(self, probe):
        try:
            data, anc, _flags, _addr = probe.sock.recvmsg(512, 1024, wire.MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return None
        ee, ttl = wire.parse_errqueue_ancillary(anc)
        if ee is None:
            return None
        if ee["origin"] in (wire.SO_EE_ORIGIN_ICMP, wire.SO_EE_ORIGIN_ICMP6):
            return {"kind": "icmp", "icmp_type": ee["icmp_type"], "icmp_code": ee["icmp_code"],
                    "sender": ee["offender"] or probe.address, "ttl": ttl}
        if ee["origin"] == wire.SO_EE_ORIGIN_LOCAL:
            return _local_reply(OSError(ee["errno"], os.strerror(ee["errno"])))
        return None

    def receive(self, key):
        probe = key.data
        sock = probe.sock
        if sock is None:
            return []
        if probe.protocol == "tcp":
            reply = self._errqueue(probe)
            if reply is not None:
                return [(probe, reply)]
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                try:
                    sock.getpeername()
                except OSError:
                    return []   # not connected yet (spurious wakeup)
                return [(probe, {"kind": "syn-ack", "sender": probe.address, "ttl": None})]
            if err == errno_mod.ECONNREFUSED:
                return [(probe, {"kind": "rst", "sender": probe.address, "ttl": None})]
            local = _local_reply(OSError(err, os.strerror(err)))
            if local is not None:
                return [(probe, local)]
            return []
        # udp / icmp echo
        reply = self._errqueue(probe)
        if reply is not None:
            return [(probe, reply)]
        try:
            data, anc, _flags, _addr = sock.recvmsg(2048, 256)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            reply = self._errqueue(probe)
            return [(probe, reply)] if reply is not None else []
        ttl = None
        for level, ctype, cdata in anc:
            if (level, ctype) in ((wire.SOL_IP, wire.IP_TTL), (wire.SOL_IPV6, wire.IPV6_HOPLIMIT)) and len(cdata) >= 4:
                ttl = int.from_bytes(cdata[:4], sys.byteorder)
        if probe.protocol == "udp":
            return [(probe, {"kind": "udp", "sender": probe.address, "ttl": ttl})]
        if data[:1] in (b"\x00", b"\x81"):
            return [(probe, {"kind": "echo-reply", "icmp_type": data[0], "icmp_code": data[1],
                             "sender": probe.address, "ttl": ttl})]
        return []


class RawEngine(object):
    """Root engine, IPv4: raw TCP SYNs, raw ICMP, UDP from a reserved port."""

    name = "raw"
    max_parallel = 65536

    def __init__(self, opts):
        self.selector = selectors.DefaultSelector()
        self.socks = []
        try:
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
            self.icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        except OSError as exc:
            self.close()
            raise BackendUnavailable("raw sockets are not available (%s); run as root or use engine=connect" % exc)
        self.socks += [self.tcp, self.icmp]
        # Reserve the source ports so no local socket uses them while we probe.
        self.tcp_reserve = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp_reserve.bind(("0.0.0.0", 0))
        self.sport = self.tcp_reserve.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("0.0.0.0", 0))
        self.udp.setsockopt(wire.SOL_IP, wire.IP_RECVTTL, 1)
        self.uport = self.udp.getsockname()[1]
        self.socks += [self.tcp_reserve, self.udp]
        for sock in (self.tcp, self.icmp, self.udp):
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            except OSError:
                pass
            self.selector.register(sock, selectors.EVENT_READ, sock)
        self.ident = (os.getpid() ^ random.getrandbits(16)) & 0xFFFF
        self.seq_base = random.getrandbits(32)
        self.pending = {}       # (address, port, protocol) -> probe
        self.sources = {}

    def close(self):
        try:
            self.selector.close()
        except Exception:
            pass
        for sock in self.socks:
            sock.close()

    def _seq(self, probe):
        return (self.seq_base + (probe.port or 0) * 7919) & 0xFFFFFFFF

    def local_error(self, probe, exc):
        return _local_reply(exc)

    def send(self, probe):
        probe.engine = self.name
        self.pending[probe.key] = probe
        if probe.protocol == "tcp":
            src = self.sources.get(probe.address)
            if src is None:
                src = self.sources[probe.address] = _route_source(probe.address, 4)
            seg = wire.build_tcp_syn(src, probe.address, self.sport, probe.port, self._seq(probe))
            self.tcp.sendto(seg, (probe.address, 0))
        elif probe.protocol == "udp":
            self.udp.sendto(udp_payload(probe.port), (probe.address, probe.port))
        else:
            self.icmp.sendto(wire.build_icmp_echo(self.ident, probe.attempts), (probe.address, 0))

    def finish(self, probe):
        pass    # keep matching late replies until the pass ends

    def _drain(self, sock, size=4096, anc=False):
        while True:
            try:
                if anc:
                    yield sock.recvmsg(size, 256)
                else:
                    yield sock.recvfrom(size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return

    def receive(self, key):
        sock = key.data
        out = []
        if sock is self.tcp:
            for data, _addr in self._drain(sock):
                hit = self.handle_tcp_packet(data)
                if hit is not None:
                    out.append(hit)
        elif sock is self.udp:
            for data, anc, _flags, addr in self._drain(sock, anc=True):
                probe = self.pending.get((addr[0], addr[1], "udp"))
                if probe is None:
                    continue
                ttl = None
                for level, ctype, cdata in anc:
                    if (level, ctype) == (wire.SOL_IP, wire.IP_TTL) and len(cdata) >= 4:
                        ttl = int.from_bytes(cdata[:4], sys.byteorder)
                out.append((probe, {"kind": "udp", "sender": addr[0], "ttl": ttl}))
        else:
            for data, _addr in self._drain(sock):
                hit = self.handle_icmp_packet(data)
                if hit is not None:
                    out.append(hit)
        return out

    def handle_tcp_packet(self, data):
        """(probe, reply) for an IPv4 TCP packet answering one of our SYNs, else None."""
        seg = wire.parse_tcp4(data)
        if seg is None or seg["dport"] != self.sport:
            return None
        probe = self.pending.get((seg["src"], seg["sport"], "tcp"))
        if probe is None or seg["ack"] != (self._seq(probe) + 1) & 0xFFFFFFFF:
            return None
        if seg["flags"] & wire.TCP_RST:
            kind = "rst"
        elif seg["flags"] & wire.TCP_SYN and seg["flags"] & wire.TCP_ACK:
            kind = "syn-ack"
        else:
            return None
        return probe, {"kind": kind, "sender": seg["src"], "ttl": seg["ttl"]}

    def handle_icmp_packet(self, data):
        """(probe, reply) for an IPv4 ICMP packet answering one of our probes, else None."""
        pkt = wire.parse_icmp4(data)
        if pkt is None:
            return None
        probe = self.match_icmp(pkt)
        if probe is None:
            return None
        kind = "echo-reply" if pkt["icmp_type"] == 0 else "icmp"
        return probe, {"kind": kind, "icmp_type": pkt["icmp_type"], "icmp_code": pkt["icmp_code"],
                       "sender": pkt["sender"], "ttl": pkt["ttl"]}

    def match_icmp(self, pkt):
        """The probe an ICMP packet answers (echo reply, or error quoting our probe)."""
        if pkt["icmp_type"] == 0:
            if pkt["icmp_id"] != self.ident:
                return None
            return self.pending.get((pkt["sender"], None, "icmp"))
        quoted = pkt.get("quoted")
        if quoted is None:      # an echo request (ours, seen on loopback) or other non-error
            return None
        if quoted["proto"] == wire.PROTO_TCP:
            if quoted.get("sport") != self.sport:
                return None
            probe = self.pending.get((quoted["dst"], quoted["dport"], "tcp"))
            if probe is not None and "seq" in quoted and quoted["seq"] != self._seq(probe):
                return None
            return probe
        if quoted["proto"] == wire.PROTO_UDP:
            if quoted.get("sport") != self.uport:
                return None
            return self.pending.get((quoted["dst"], quoted["dport"], "udp"))
        if quoted["proto"] == wire.PROTO_ICMP and quoted.get("icmp_id") == self.ident:
            return self.pending.get((quoted["dst"], None, "icmp"))
        return None


def udp_payload(port):
    """What a UDP probe carries: a DNS query on 53 (a server answers only that), else a
    short line (an echo service answers anything non-empty)."""
    if port == 53:
        # id 0x6e64, RD, one question: ". IN NS"
        return b"\x6e\x64\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01"
    return b"netdiag-probe\r\n"


def check_ping_socket(family):
    """Raise BackendUnavailable unless an unprivileged ICMP echo socket can be opened."""
    fam, proto = (socket.AF_INET, socket.IPPROTO_ICMP) if family == 4 else (socket.AF_INET6, socket.IPPROTO_ICMPV6)
    try:
        socket.socket(fam, socket.SOCK_DGRAM, proto).close()
    except OSError as exc:
        raise BackendUnavailable(
            "protocol icmp with the connect engine needs a ping socket, which this host refuses (%s): "
            "run as root, or let the user's group in net.ipv4.ping_group_range" % (exc.strerror or exc))


def raw_available():
    """True when this process may open raw sockets (root or CAP_NET_RAW)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
        return True
    except OSError:
        return False


def choose_engine(requested):
    """Resolve ``auto`` to ``raw`` or ``connect``; returns (name, why)."""
    if requested == "raw":
        if not raw_available():
            raise BackendUnavailable("engine=raw needs raw sockets (root or CAP_NET_RAW); use engine=connect or auto")
        return "raw", "requested"
    if requested == "connect":
        return "connect", "requested"
    if raw_available():
        return "raw", "raw sockets available"
    return "connect", "no raw sockets (not root): using connect() with IP_RECVERR; SYN-ACK/RST TTLs are not visible"


# --------------------------------------------------------------------------------------
# Application check


def app_check(address, family, port, kind, timeout):
    """Connect and read a banner (``banner``) or send an HTTP request line (``http``)."""
    fam = socket.AF_INET if family == 4 else socket.AF_INET6
    start = time.monotonic()
    out = {"check": kind, "answered": False, "data": None, "error": None, "rtt_ms": None}
    sock = socket.socket(fam, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
        if kind == "http":
            host = address if family == 4 else "[%s]" % address
            sock.sendall(("HEAD / HTTP/1.0\r\nHost: %s\r\nUser-Agent: netdiag-probe\r\n\r\n" % host).encode("ascii"))
        data = sock.recv(512)
        if data:
            out["answered"] = True
            out["data"] = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")[:200]
        else:
            out["error"] = "connection closed without data"
    except socket.timeout:
        out["error"] = "no data within %ss" % timeout
    except OSError as exc:
        out["error"] = "%s" % (exc.strerror or exc)
    finally:
        sock.close()
    out["rtt_ms"] = round((time.monotonic() - start) * 1000.0, 3)
    return out


# --------------------------------------------------------------------------------------
# Entry point


def probe(targets, **options):
    """Probe ``targets`` and return ``{engine, engine_reason, results, summary, elapsed_s}``.

    ``targets``: list of ``{host, ports, protocol}`` (see :func:`expand_targets`).
    ``options``: see ``DEFAULTS``.  Raises InputError for bad input and
    BackendUnavailable when the requested engine cannot run.
    """
    opts = normalize_options(options)
    descs = expand_targets(targets, opts["max_probes"], opts["family"])
    engine_name, why = choose_engine(opts["engine"])
    start = time.monotonic()
    probes = [Probe(d, i) for i, d in enumerate(descs)]
    groups = {}
    for p in probes:
        name = engine_name
        if name == "raw" and p.family == 6:
            name = "connect"    # the raw engine is IPv4 only
        groups.setdefault(name, []).append(p)
    for fam in sorted(set(p.family for p in groups.get("connect", []) if p.protocol == "icmp")):
        check_ping_socket(fam)
    notes = []
    if engine_name == "raw" and "connect" in groups:
        notes.append("IPv6 targets were probed with the connect engine (the raw engine is IPv4 only)")
    for name, group in groups.items():
        engine = RawEngine(opts) if name == "raw" else ConnectEngine(opts)
        try:
            rtt = _RttStats(opts["timeout"])
            run_pass(engine, group, opts, rtt, opts["retries"])
            last_icmp = {}
            now = time.monotonic()
            for p in group:
                if _icmp_error(p):
                    last_icmp[p.address] = now
            settle_rate_limited(engine, group, opts, rtt, last_icmp)
        finally:
            engine.close()
    if opts["app_check"] != "none":
        opened = [p for p in probes if p.protocol == "tcp" and p.reply is not None and p.reply["kind"] == "syn-ack"]
        if opened:
            with ThreadPoolExecutor(max_workers=min(16, len(opened))) as pool:
                futures = [(p, pool.submit(app_check, p.address, p.family, p.port, opts["app_check"],
                                           opts["app_timeout"])) for p in opened]
                for p, fut in futures:
                    p.app = fut.result()
    results = [p.result() for p in probes]
    summary = dict((s, 0) for s in STATES)
    for r in results:
        summary[r["state"]] += 1
    summary["rate_limited"] = sum(1 for r in results if r["rate_limited"])
    return {
        "engine": engine_name,
        "engine_reason": why,
        "notes": notes,
        "results": results,
        "summary": summary,
        "elapsed_s": round(time.monotonic() - start, 3),
    }
