# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``raw`` probe engine (root / CAP_NET_RAW, IPv4): TCP SYNs sent on a raw socket
from one reserved source port, replies read from raw TCP and ICMP sockets, ICMP errors
matched to the probe through the quoted header.  UDP datagrams go out of an ordinary
socket bound to a reserved port; ICMP echo on the raw ICMP socket.  Sees reply TTLs of
everything.  :func:`raw_available` says whether this process may use it.
"""

from __future__ import annotations

import os
import random
import selectors
import socket
import sys

from ansible_collections.netdiag.reachability.plugins.module_utils.probe import wire
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import BackendUnavailable


def _route_source(address, family):
    """Source address the kernel would use towards ``address`` (no packet is sent)."""
    sock = socket.socket(socket.AF_INET if family == 4 else socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.connect((address, 9))
        return sock.getsockname()[0]
    finally:
        sock.close()


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
            hint = ("this process is root but lacks CAP_NET_RAW (a container?): grant it" if os.geteuid() == 0
                    else "run as root")
            raise BackendUnavailable("raw sockets are not available (%s); %s, or use engine=connect" % (exc, hint))
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
        return wire.local_reply(exc)

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
            self.udp.sendto(wire.udp_payload(probe.port), (probe.address, probe.port))
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


def raw_available():
    """True when this process may open raw sockets (root or CAP_NET_RAW)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
        return True
    except OSError:
        return False
