# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decode captured frames: the IP packet inside a link-layer frame
(:func:`network_layer`), then the TCP, UDP or ICMP fields the flow accounting uses
(:func:`decode`), with an ICMP error's quoted header turned into the key of the flow it
is about.  IPv4 packets are decoded with the probe's own parsers (``probe/wire.py``);
IPv6 (no parser there) by :func:`parse_ipv6` below.
"""

from __future__ import annotations

import socket
import struct

from ansible_collections.netdiag.reachability.plugins.module_utils.probe import wire

# Link types (https://www.tcpdump.org/linktypes.html)
LINKTYPES = {
    0: "NULL", 1: "EN10MB", 12: "RAW", 14: "RAW", 101: "RAW", 108: "LOOP", 113: "LINUX_SLL",
    228: "IPV4", 229: "IPV6", 276: "LINUX_SLL2",
}
ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86DD
ETHERTYPE_VLAN = (0x8100, 0x88A8, 0x9100)
BSD_AF_INET6 = (24, 28, 30)     # NetBSD/OpenBSD, FreeBSD, macOS


def network_layer(linktype, frame):
    """The IP packet inside a link-layer ``frame``: ``(4|6, bytes)`` or None."""
    etype = None
    if linktype == 1:
        off = 14
        if len(frame) < off:
            return None
        etype = struct.unpack("!H", frame[12:14])[0]
        while etype in ETHERTYPE_VLAN and len(frame) >= off + 4:
            etype = struct.unpack("!H", frame[off + 2:off + 4])[0]
            off += 4
        payload = frame[off:]
    elif linktype == 113:
        if len(frame) < 16:
            return None
        etype, payload = struct.unpack("!H", frame[14:16])[0], frame[16:]
    elif linktype == 276:
        if len(frame) < 20:
            return None
        etype, payload = struct.unpack("!H", frame[0:2])[0], frame[20:]
    elif linktype in (0, 108):
        if len(frame) < 4:
            return None
        fams = set(struct.unpack("<I", frame[:4]) + struct.unpack(">I", frame[:4]))
        etype = ETHERTYPE_IPV4 if 2 in fams else ETHERTYPE_IPV6 if fams & set(BSD_AF_INET6) else None
        payload = frame[4:]
    elif linktype in (12, 14, 101, 228, 229):
        payload = frame
        version = bytearray(frame[:1])[0] >> 4 if frame else None
        etype = {4: ETHERTYPE_IPV4, 6: ETHERTYPE_IPV6}.get(version)
    else:
        return None
    if etype == ETHERTYPE_IPV4:
        return 4, payload
    if etype == ETHERTYPE_IPV6:
        return 6, payload
    return None


_V6_EXTENSIONS = (0, 43, 44, 51, 60)


def parse_ipv6(data):
    """Parse an IPv6 packet (or the start of one quoted by an ICMPv6 error).

    Returns ``{src, dst, ttl, proto, body, fragment}``: extension headers skipped,
    ``proto`` the upper-layer protocol and ``body`` its bytes; ``fragment`` is True for a
    non-first fragment (no transport header).  None when too short.
    """
    if len(data) < 40 or bytearray(data[:1])[0] >> 4 != 6:
        return None
    nxt, hlim = bytearray(data[6:8])
    out = {"src": socket.inet_ntop(socket.AF_INET6, data[8:24]), "dst": socket.inet_ntop(socket.AF_INET6, data[24:40]),
           "ttl": hlim, "fragment": False}
    off = 40
    while nxt in _V6_EXTENSIONS:
        if len(data) < off + 8:
            return None
        hdr = bytearray(data[off:off + 2])
        if nxt == 44:
            if struct.unpack("!H", data[off + 2:off + 4])[0] >> 3:
                out["fragment"] = True
            size = 8
        elif nxt == 51:
            size = (hdr[1] + 2) * 4
        else:
            size = (hdr[1] + 1) * 8
        nxt = hdr[0]
        off += size
    out["proto"] = nxt
    out["body"] = data[off:]
    return out


def _quoted6(data):
    ip = parse_ipv6(data)
    if ip is None or ip["fragment"]:
        return None
    body = ip["body"]
    out = {"src": ip["src"], "dst": ip["dst"], "proto": ip["proto"]}
    if ip["proto"] in (wire.PROTO_TCP, wire.PROTO_UDP):
        if len(body) < 4:
            return None
        out["sport"], out["dport"] = struct.unpack("!HH", body[:4])
    elif ip["proto"] == wire.PROTO_ICMP6:
        if len(body) < 8:
            return None
        out["icmp_id"] = struct.unpack("!H", body[4:6])[0]
    return out


_PROTO_NAMES = {wire.PROTO_TCP: "tcp", wire.PROTO_UDP: "udp", wire.PROTO_ICMP: "icmp", wire.PROTO_ICMP6: "icmp"}
# ICMP errors that say what happened to a flow: destination unreachable and time exceeded.
ICMP_ERRORS = {4: (3, 11), 6: (1, 3)}
ICMP_ECHO = {4: (8, 0), 6: (128, 129)}     # (request, reply)


def _quoted_flow(quoted):
    proto = _PROTO_NAMES.get(quoted["proto"])
    if proto is None:
        return None
    if proto == "icmp":
        if "icmp_id" not in quoted:
            return None
        return (proto, quoted["src"], quoted["icmp_id"], quoted["dst"], None)
    return (proto, quoted["src"], quoted["sport"], quoted["dst"], quoted["dport"])


def decode(family, data):
    """Decode an IP packet into the fields pcap_info uses, or None when it is not a
    TCP, UDP or ICMP packet it can read (other protocols, non-first fragments, truncated
    headers).  ``kind`` is ``tcp``, ``udp``, ``echo`` (request), ``echo-reply``,
    ``icmp-error`` (with ``quoted`` = the quoted packet's flow key) or ``icmp-other``."""
    if family == 4:
        if len(data) < 20 or bytearray(data[:1])[0] >> 4 != 4:
            return None
        if struct.unpack("!H", data[6:8])[0] & 0x1FFF:
            return None             # a non-first fragment carries no transport header
        proto = bytearray(data[9:10])[0]
        if proto == wire.PROTO_TCP:
            seg = wire.parse_tcp4(data)
            if seg is None:
                return None
            return dict(seg, kind="tcp", family=4)
        if proto == wire.PROTO_UDP:
            hdr = wire.parse_quoted(data)
            if hdr is None:
                return None
            return {"kind": "udp", "family": 4, "src": hdr["src"], "dst": hdr["dst"], "ttl": bytearray(data[8:9])[0],
                    "sport": hdr["sport"], "dport": hdr["dport"]}
        if proto == wire.PROTO_ICMP:
            pkt = wire.parse_icmp4(data)
            if pkt is None:
                return None
            out = {"family": 4, "src": pkt["sender"], "dst": pkt["dst"], "ttl": pkt["ttl"],
                   "icmp_type": pkt["icmp_type"], "icmp_code": pkt["icmp_code"]}
            return _icmp_kind(out, 4, pkt.get("icmp_id"), pkt.get("quoted"))
        return None
    ip = parse_ipv6(data)
    if ip is None or ip["fragment"]:
        return None
    body = ip["body"]
    base = {"family": 6, "src": ip["src"], "dst": ip["dst"], "ttl": ip["ttl"]}
    if ip["proto"] == wire.PROTO_TCP and len(body) >= 14:
        sport, dport, seq, ack, offset_flags = struct.unpack("!HHIIH", body[:14])
        return dict(base, kind="tcp", sport=sport, dport=dport, seq=seq, ack=ack, flags=offset_flags & 0x3F)
    if ip["proto"] == wire.PROTO_UDP and len(body) >= 8:
        sport, dport = struct.unpack("!HH", body[:4])
        return dict(base, kind="udp", sport=sport, dport=dport)
    if ip["proto"] == wire.PROTO_ICMP6 and len(body) >= 8:
        itype, code = bytearray(body[:2])
        base.update(icmp_type=itype, icmp_code=code)
        quoted = _quoted6(body[8:]) if itype < 128 else None
        return _icmp_kind(base, 6, struct.unpack("!H", body[4:6])[0], quoted)
    return None


def _icmp_kind(out, family, ident, quoted):
    itype = out["icmp_type"]
    request, reply = ICMP_ECHO[family]
    if itype in (request, reply):
        out.update(kind="echo" if itype == request else "echo-reply", icmp_id=ident)
    elif itype in ICMP_ERRORS[family] and quoted is not None and _quoted_flow(quoted) is not None:
        out.update(kind="icmp-error", quoted=_quoted_flow(quoted))
    else:
        out["kind"] = "icmp-other"
    return out
