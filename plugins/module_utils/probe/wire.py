# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Packets on the wire for the probe: build TCP SYNs and ICMP echoes, parse what comes
back (IPv4 TCP segments, ICMP replies and errors with their quoted header), and parse
Linux ``sock_extended_err`` records read from a socket's error queue (``IP_RECVERR``).
Also what both engines send and record alike: the payload of a UDP probe
(:func:`udp_payload`) and the reply standing for a send that failed on this host
(:func:`local_reply`).

Pure functions over ``bytes``; no sockets here, so every parser is tested by replaying
real captured packets.
"""

from __future__ import annotations

import errno as errno_mod
import socket
import struct

# Linux constants not exported by every Python's socket module.
IP_TTL = getattr(socket, "IP_TTL", 2)
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
# path MTU probing (DF set, the size asked is sent whatever the kernel has cached)
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_MTU = getattr(socket, "IP_MTU", 14)
IP_PMTUDISC_PROBE = getattr(socket, "IP_PMTUDISC_PROBE", 3)
IPV6_MTU_DISCOVER = getattr(socket, "IPV6_MTU_DISCOVER", 23)
IPV6_MTU = getattr(socket, "IPV6_MTU", 24)
IPV6_PMTUDISC_PROBE = getattr(socket, "IPV6_PMTUDISC_PROBE", 3)
SOL_IP = getattr(socket, "SOL_IP", 0)
SOL_IPV6 = getattr(socket, "SOL_IPV6", 41)
TCP_SYNCNT = getattr(socket, "TCP_SYNCNT", 7)

SO_EE_ORIGIN_NONE = 0
SO_EE_ORIGIN_LOCAL = 1
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58
PROTO_NUMBERS = {"icmp": PROTO_ICMP, "tcp": PROTO_TCP, "udp": PROTO_UDP}

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10

_EE = struct.Struct("=IBBBBII")  # struct sock_extended_err


def checksum(data):
    """RFC 1071 Internet checksum of ``data``."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def build_tcp_syn(src, dst, sport, dport, seq, window=1024):
    """A TCP SYN segment (no IP header) with an MSS option, checksummed for src->dst."""
    offset_flags = (6 << 12) | TCP_SYN
    options = b"\x02\x04\x05\xb4"  # MSS 1460
    header = struct.pack("!HHIIHHHH", sport, dport, seq, 0, offset_flags, window, 0, 0) + options
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, PROTO_TCP, len(header))
    csum = checksum(pseudo + header)
    return header[:16] + struct.pack("!H", csum) + header[18:]


def build_icmp_echo(ident, seq, payload=b"netdiag-probe"):
    """An ICMPv4 echo request (no IP header)."""
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    csum = checksum(header + payload)
    return struct.pack("!BBHHH", 8, 0, csum, ident, seq) + payload


def _ipv4_header(data):
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    if ihl < 20 or len(data) < ihl:
        return None
    return {
        "ihl": ihl,
        "ttl": data[8],
        "proto": data[9],
        "src": socket.inet_ntoa(data[12:16]),
        "dst": socket.inet_ntoa(data[16:20]),
    }


def parse_tcp4(data):
    """Parse an IPv4 packet carrying TCP (as a raw IPPROTO_TCP socket delivers it).

    Returns ``{src, dst, ttl, sport, dport, seq, ack, flags}`` or None.
    """
    ip = _ipv4_header(data)
    if ip is None or ip["proto"] != PROTO_TCP or len(data) < ip["ihl"] + 14:
        return None
    sport, dport, seq, ack, offset_flags = struct.unpack("!HHIIH", data[ip["ihl"]:ip["ihl"] + 14])
    return {"src": ip["src"], "dst": ip["dst"], "ttl": ip["ttl"], "sport": sport, "dport": dport,
            "seq": seq, "ack": ack, "flags": offset_flags & 0x3F}


def parse_quoted(quoted):
    """Parse the offending packet an ICMPv4 error quotes: IP header + >= 8 bytes.

    Returns ``{src, dst, proto, sport, dport, seq}`` (TCP/UDP) or ``{..., icmp_id,
    icmp_seq}`` (ICMP echo) or None when the quote is too short.
    """
    ip = _ipv4_header(quoted)
    if ip is None:
        return None
    body = quoted[ip["ihl"]:]
    out = {"src": ip["src"], "dst": ip["dst"], "proto": ip["proto"]}
    if ip["proto"] in (PROTO_TCP, PROTO_UDP):
        if len(body) < 4:
            return None
        out["sport"], out["dport"] = struct.unpack("!HH", body[:4])
        if ip["proto"] == PROTO_TCP and len(body) >= 8:
            out["seq"] = struct.unpack("!I", body[4:8])[0]
    elif ip["proto"] == PROTO_ICMP:
        if len(body) < 8:
            return None
        itype, _code, _csum, ident, seq = struct.unpack("!BBHHH", body[:8])
        out.update({"icmp_type": itype, "icmp_id": ident, "icmp_seq": seq})
    return out


def parse_icmp4(data):
    """Parse an IPv4 packet carrying ICMP (as a raw IPPROTO_ICMP socket delivers it).

    Returns ``{sender, dst, ttl, icmp_type, icmp_code, quoted}`` where ``quoted`` is the
    :func:`parse_quoted` result for errors (types 3, 4, 5, 11, 12), or
    ``{sender, dst, ttl, icmp_type, icmp_code, icmp_id, icmp_seq}`` for echo replies.
    None for anything else or truncated packets.
    """
    ip = _ipv4_header(data)
    if ip is None or ip["proto"] != PROTO_ICMP or len(data) < ip["ihl"] + 8:
        return None
    body = data[ip["ihl"]:]
    itype, code, _csum, rest1, rest2 = struct.unpack("!BBHHH", body[:8])
    out = {"sender": ip["src"], "dst": ip["dst"], "ttl": ip["ttl"], "icmp_type": itype, "icmp_code": code}
    if itype in (0, 8):
        out.update({"icmp_id": rest1, "icmp_seq": rest2})
        return out
    if itype in (3, 4, 5, 11, 12):
        quoted = parse_quoted(body[8:])
        if quoted is None:
            return None
        out["quoted"] = quoted
        return out
    return None


def parse_extended_err(cmsg_data):
    """Parse the ``IP_RECVERR``/``IPV6_RECVERR`` control message of ``MSG_ERRQUEUE``.

    Returns ``{errno, origin, icmp_type, icmp_code, info, offender}``; ``offender``
    is the address of the host that sent the ICMP (``SO_EE_OFFENDER``) or None.
    """
    if len(cmsg_data) < _EE.size:
        return None
    err, origin, itype, code, _pad, info, _data = _EE.unpack(cmsg_data[:_EE.size])
    offender = None
    tail = cmsg_data[_EE.size:]
    if len(tail) >= 2:
        family = struct.unpack("=H", tail[:2])[0]
        if family == socket.AF_INET and len(tail) >= 8:
            offender = socket.inet_ntop(socket.AF_INET, tail[4:8])
        elif family == socket.AF_INET6 and len(tail) >= 24:
            offender = socket.inet_ntop(socket.AF_INET6, tail[8:24])
    return {"errno": err, "origin": origin, "icmp_type": itype, "icmp_code": code,
            "info": info, "offender": offender}


def parse_errqueue_ancillary(ancdata):
    """From ``recvmsg(..., MSG_ERRQUEUE)`` ancillary data: (extended_err dict, ttl)."""
    ee = None
    ttl = None
    for level, ctype, data in ancdata:
        if (level, ctype) in ((SOL_IP, IP_RECVERR), (SOL_IPV6, IPV6_RECVERR)):
            ee = parse_extended_err(data)
        elif (level, ctype) in ((SOL_IP, IP_TTL), (SOL_IPV6, IPV6_HOPLIMIT)) and len(data) >= 4:
            ttl = struct.unpack("=i", data[:4])[0]
    return ee, ttl


_LOCAL_ERRORS = {
    errno_mod.ENETUNREACH: "no-route",
    errno_mod.EHOSTUNREACH: "no-route",
    errno_mod.EACCES: "local-prohibited",
    errno_mod.EPERM: "local-prohibited",
}


def local_reply(exc):
    """A send/connect that failed locally (no route, local firewall): an ICMP-like
    reply from this host, so it classifies as unreachable/filtered with evidence."""
    if exc.errno in (errno_mod.ENETUNREACH, errno_mod.EHOSTUNREACH):
        return {"kind": "icmp", "icmp_type": 3, "icmp_code": 0 if exc.errno == errno_mod.ENETUNREACH else 1,
                "sender": "local", "ttl": None, "local_errno": errno_mod.errorcode.get(exc.errno)}
    if exc.errno in (errno_mod.EACCES, errno_mod.EPERM):
        return {"kind": "icmp", "icmp_type": 3, "icmp_code": 13, "sender": "local", "ttl": None,
                "local_errno": errno_mod.errorcode.get(exc.errno)}
    return None


def udp_payload(port):
    """What a UDP probe carries: a DNS query on 53 (a server answers only that), else a
    short line (an echo service answers anything non-empty)."""
    if port == 53:
        # id 0x6e64, RD, one question: ". IN NS"
        return b"\x6e\x64\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01"
    return b"netdiag-probe\r\n"
