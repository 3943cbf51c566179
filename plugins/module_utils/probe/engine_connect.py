# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``connect`` probe engine (any user): non-blocking ``connect()`` / connected UDP
sockets with ``IP_RECVERR``; the error queue yields the exact ICMP type, code, sender
and TTL.  It cannot see the TTL of a SYN-ACK or RST (``reply.ttl`` is null for those),
and ICMP echo needs ``net.ipv4.ping_group_range`` to include the user's group
(:func:`check_ping_socket`).
"""

from __future__ import annotations

import errno as errno_mod
import os
import selectors
import socket
import sys

from ansible_collections.netdiag.reachability.plugins.module_utils.probe import wire
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import BackendUnavailable


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
                    "ICMP echo with the connect engine needs a ping socket, which this host refuses (%s): add the "
                    "user's group to net.ipv4.ping_group_range%s" % (exc, _or_root()))
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
        return wire.local_reply(exc)

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
            probe.sock.send(wire.udp_payload(probe.port))
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
            return wire.local_reply(OSError(ee["errno"], os.strerror(ee["errno"])))
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
            local = wire.local_reply(OSError(err, os.strerror(err)))
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


def check_ping_socket(family):
    """Raise BackendUnavailable unless an unprivileged ICMP echo socket can be opened."""
    fam, proto = (socket.AF_INET, socket.IPPROTO_ICMP) if family == 4 else (socket.AF_INET6, socket.IPPROTO_ICMPV6)
    try:
        socket.socket(fam, socket.SOCK_DGRAM, proto).close()
    except OSError as exc:
        raise BackendUnavailable(
            "protocol icmp with the connect engine needs a ping socket, which this host refuses (%s): "
            "let the user's group in net.ipv4.ping_group_range%s" % (exc.strerror or exc, _or_root()))


def _or_root():
    """The other way out, for a message: root can use the raw engine; others can become root."""
    return ", or use engine=raw (this process is root)" if os.geteuid() == 0 else ", or run as root"
