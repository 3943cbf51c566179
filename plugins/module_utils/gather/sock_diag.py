# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The listen backlog and IPV6_V6ONLY of sockets, from one NETLINK_SOCK_DIAG dump per (protocol, family).

Two facts about a listening socket are not in ``/proc``: the accept backlog a TCP socket was
given by ``listen()`` and whether an IPv6 socket has ``IPV6_V6ONLY``.  Both come from the
kernel's socket-diagnostics netlink interface, the one ``ss`` uses: :func:`sock_diag_dump_raw`
asks this process's network namespace, :func:`parse_sock_diag` decodes a reply (or a capture).
"""

from __future__ import annotations

import os
import socket
import struct

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.procfs import TCP_CLOSE, TCP_LISTEN

# NETLINK_SOCK_DIAG (linux/sock_diag.h, linux/inet_diag.h)
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_SKV6ONLY = 11
_NLMSGHDR = struct.Struct("=IHHII")
_INET_DIAG_MSG_LEN = 72
DIAG_QUERIES = (
    # (protocol, family, IPPROTO_*, state bitmask)
    ("tcp", 4, 6, 1 << TCP_LISTEN),
    ("tcp", 6, 6, 1 << TCP_LISTEN),
    ("udp", 4, 17, 1 << TCP_CLOSE),
    ("udp", 6, 17, 1 << TCP_CLOSE),
)


def parse_sock_diag(data, source="sock_diag"):
    """Parse a NETLINK_SOCK_DIAG dump reply: ``{inode: {backlog, depth, v6only}}``.

    ``backlog`` is ``sk_max_ack_backlog`` (TCP LISTEN), ``depth`` ``sk_ack_backlog``,
    ``v6only`` the socket's IPV6_V6ONLY (IPv6 only, else None).
    """
    if not isinstance(data, (bytes, bytearray)):
        raise ParseError("a sock_diag reply is bytes, got %s" % type(data).__name__, source)
    out = {}
    offset = 0
    while offset < len(data):
        if len(data) - offset < _NLMSGHDR.size:
            raise ParseError("truncated netlink header at byte %d" % offset, source)
        length, msg_type, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            raise ParseError("netlink message at byte %d has bad length %d" % (offset, length), source)
        body = data[offset + _NLMSGHDR.size:offset + length]
        offset += (length + 3) & ~3
        if msg_type == NLMSG_DONE:
            break
        if msg_type == NLMSG_ERROR:
            errno = -struct.unpack_from("=i", body)[0] if len(body) >= 4 else 0
            try:
                reason = os.strerror(errno)
            except (OverflowError, ValueError):
                reason = "not an errno"
            raise ParseError("netlink error %d (%s)" % (errno, reason), source)
        if msg_type != SOCK_DIAG_BY_FAMILY:
            continue
        if len(body) < _INET_DIAG_MSG_LEN:
            raise ParseError("inet_diag_msg of %d bytes, expected %d" % (len(body), _INET_DIAG_MSG_LEN), source)
        family = body[0]
        rqueue, wqueue, _uid, inode = struct.unpack_from("=IIII", body, 56)
        v6only = None
        pos = _INET_DIAG_MSG_LEN
        while pos + 4 <= len(body):
            rta_len, rta_type = struct.unpack_from("=HH", body, pos)
            if rta_len < 4:
                raise ParseError("netlink attribute of length %d" % rta_len, source)
            if rta_type == INET_DIAG_SKV6ONLY and rta_len >= 5:
                v6only = bool(body[pos + 4])
            pos += (rta_len + 3) & ~3
        entry = {"depth": rqueue, "backlog": wqueue, "v6only": v6only}
        if family != socket.AF_INET6:
            entry["v6only"] = None
        out[inode] = entry
    return out


def sock_diag_dump_raw(queries=DIAG_QUERIES):
    """Ask the kernel (this process's network namespace) for its listening sockets.

    Returns ``{(protocol, family): raw reply bytes}``; a query the kernel refuses
    (e.g. ``udp_diag`` not loaded) maps to its error reply, which parse_sock_diag reports.
    Raises OSError when netlink itself is unavailable.
    """
    out = {}
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    try:
        sock.settimeout(5)
        for seq, (protocol, family, ipproto, states) in enumerate(queries, start=1):
            af = socket.AF_INET if family == 4 else socket.AF_INET6
            req = struct.pack("=BBBBI", af, ipproto, 0, 0, states) + b"\0" * 48
            sock.sendto(_NLMSGHDR.pack(_NLMSGHDR.size + len(req), SOCK_DIAG_BY_FAMILY,
                                       NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + req, (0, 0))
            chunks = []
            done = False
            while not done:
                data = sock.recv(1 << 17)
                if not data:
                    break
                chunks.append(data)
                offset = 0
                while offset + _NLMSGHDR.size <= len(data):
                    length, msg_type = struct.unpack_from("=IH", data, offset)
                    if msg_type in (NLMSG_DONE, NLMSG_ERROR):
                        done = True
                        break
                    if length < _NLMSGHDR.size:
                        done = True
                        break
                    offset += (length + 3) & ~3
            out[(protocol, family)] = b"".join(chunks)
    finally:
        sock.close()
    return out
