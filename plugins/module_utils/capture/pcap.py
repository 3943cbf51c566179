# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Explain a packet capture (pcap or pcapng, optionally gzipped): ICMP errors matched to
the flows that caused them through the quoted header, RST answers, unanswered SYNs, and
one verdict per flow in the probe's vocabulary (``probe.classify``: open, closed,
filtered, open|filtered, unreachable with reasons syn-ack, reset, port-unreach,
host-prohibited, admin-prohibited, no-response, ...).

The capture container is read by a small pure-Python reader, not scapy: scapy's readers
treat a truncated record or block as the end of the file (``EOFError`` ->
``StopIteration``), so a cut-off capture would silently look like a short one.  Here a
truncated or corrupt file raises :class:`TruncatedCapture` / ``ParseError`` naming the
packet number and byte offset, and the module needs nothing on the target beyond Python.
IPv4 packets are decoded with ``probe_wire``'s parsers (the probe's own); IPv6 (no
parser in ``probe_wire``) by :func:`parse_ipv6` below.
"""

from __future__ import annotations

import gzip
import ipaddress
import os
import socket
import struct
import zlib

from ansible_collections.netdiag.reachability.plugins.module_utils._common import icmp as icmp_tables
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import wire
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import parse_port
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import STATES, classify

DEFAULT_MAX_PACKETS = 1000000
MAX_RECORD = 256 * 1024 * 1024      # a record claiming more than this is corruption, not a packet
MAX_REPLIES = 10                    # replies listed per flow (packets_in counts them all)


class TruncatedCapture(ParseError):
    """The capture ends in the middle of a record or block."""


# --------------------------------------------------------------------------------------
# Container formats

PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
GZIP_MAGIC = b"\x1f\x8b"

# Link types (https://www.tcpdump.org/linktypes.html)
LINKTYPES = {
    0: "NULL", 1: "EN10MB", 12: "RAW", 14: "RAW", 101: "RAW", 108: "LOOP", 113: "LINUX_SLL",
    228: "IPV4", 229: "IPV6", 276: "LINUX_SLL2",
}
ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86DD
ETHERTYPE_VLAN = (0x8100, 0x88A8, 0x9100)
BSD_AF_INET6 = (24, 28, 30)     # NetBSD/OpenBSD, FreeBSD, macOS


class _Stream(object):
    """A file read strictly: knows its byte offset, reads exact lengths."""

    def __init__(self, fh, source):
        self.fh = fh
        self.source = source
        self.offset = 0

    def read(self, size):
        try:
            data = self.fh.read(size)
        except (EOFError, OSError, zlib.error) as exc:    # a truncated or corrupt gzip stream
            raise TruncatedCapture("truncated or corrupt data near byte offset %d (%s)" % (self.offset, exc), self.source)
        self.offset += len(data)
        return data


def open_capture(path):
    """Open ``path`` and return ``(stream, format)`` positioned after the 4-byte magic,
    or raise InputError (missing, unreadable, a directory) / ParseError (not a capture)."""
    if not isinstance(path, str) or not path:
        raise InputError("invalid path %r: expected the path of a pcap or pcapng file" % (path,))
    if os.path.isdir(path):
        raise InputError("invalid path %r: is a directory, expected a pcap or pcapng file" % path)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise InputError("cannot open capture %r: %s" % (path, exc.strerror or exc))
    compressed = False
    head = fh.read(4)
    if head[:2] == GZIP_MAGIC:
        fh.close()
        fh = gzip.open(path, "rb")
        compressed = True
    else:
        fh.seek(0)
    stream = _Stream(fh, path)
    head = stream.read(4)
    if not head:
        fh.close()
        raise ParseError("empty file, not a pcap or pcapng capture", path)
    if len(head) < 4:
        fh.close()
        raise TruncatedCapture("file is %d bytes long, too short for a pcap or pcapng capture" % len(head), path)
    if head in PCAP_MAGIC:
        fmt = "pcap"
    elif struct.unpack("<I", head)[0] == PCAPNG_SHB:
        fmt = "pcapng"
    else:
        fh.close()
        raise ParseError("not a pcap or pcapng file (starts with bytes %s; pcap starts with d4c3b2a1 or "
                         "a1b2c3d4, pcapng with 0a0d0d0a)" % _hex(head), path)
    stream.magic = head
    return stream, fmt + ("+gzip" if compressed else "")


def _hex(data):
    return "".join("%02x" % b for b in bytearray(data))


def _need(stream, size, what):
    start = stream.offset
    data = stream.read(size)
    if len(data) < size:
        raise TruncatedCapture("truncated: %s at byte offset %d needs %d bytes, the file has %d"
                               % (what, start, size, len(data)), stream.source)
    return data


def pcap_records(stream):
    """Yield ``(timestamp, linktype, data, wirelen)`` from a classic pcap body."""
    endian, scale = PCAP_MAGIC[stream.magic]
    hdr = _need(stream, 20, "the pcap file header")
    _vmaj, _vmin, _zone, _sigfigs, _snaplen, network = struct.unpack(endian + "HHiIII", hdr)
    linktype = network & 0x03FFFFFF     # upper bits: FCS length flags
    number = 0
    while True:
        start = stream.offset
        rec = stream.read(16)
        if not rec:
            return
        number += 1
        if len(rec) < 16:
            raise TruncatedCapture("truncated: record header of packet #%d at byte offset %d has %d of 16 bytes"
                                   % (number, start, len(rec)), stream.source)
        sec, frac, incl, orig = struct.unpack(endian + "IIII", rec)
        if incl > MAX_RECORD:
            raise ParseError("corrupt: packet #%d at byte offset %d claims %d captured bytes" % (number, start, incl),
                             stream.source)
        data = _need(stream, incl, "packet #%d (record at byte offset %d)" % (number, start))
        yield sec + frac * scale, linktype, data, orig


def _ng_options(body, endian):
    """pcapng options -> {code: first value}."""
    out = {}
    off = 0
    while off + 4 <= len(body):
        code, length = struct.unpack(endian + "HH", body[off:off + 4])
        if code == 0:
            break
        out.setdefault(code, body[off + 4:off + 4 + length])
        off += 4 + length + (-length % 4)
    return out


def _tsresol(value):
    if not value:
        return 1e-6
    byte = bytearray(value)[0]
    return 2.0 ** -(byte & 0x7F) if byte & 0x80 else 10.0 ** -(byte & 0x7F)


def pcapng_records(stream):
    """Yield ``(timestamp, linktype, data, wirelen)`` from a pcapng file (after the magic)."""
    interfaces = []
    endian = "<"
    number = 0
    blocktype_raw = stream.magic
    while True:
        start = stream.offset - 4
        if blocktype_raw is None:
            start = stream.offset
            blocktype_raw = stream.read(4)
            if not blocktype_raw:
                return
            if len(blocktype_raw) < 4:
                raise TruncatedCapture("truncated: block at byte offset %d has %d of 8 header bytes"
                                       % (start, len(blocktype_raw)), stream.source)
        if struct.unpack("<I", blocktype_raw)[0] == PCAPNG_SHB:
            head = _need(stream, 8, "section header block")
            bom = head[4:8]
            if struct.unpack("<I", bom)[0] == PCAPNG_BOM:
                endian = "<"
            elif struct.unpack(">I", bom)[0] == PCAPNG_BOM:
                endian = ">"
            else:
                raise ParseError("corrupt pcapng section header at byte offset %d (byte-order magic %s)"
                                 % (start, _hex(bom)), stream.source)
            blocklen = struct.unpack(endian + "I", head[:4])[0]
            blocktype = PCAPNG_SHB
            interfaces = []
            if blocklen < 28 or blocklen % 4:
                raise ParseError("corrupt pcapng section header at byte offset %d (length %d)" % (start, blocklen),
                                 stream.source)
            rest = _need(stream, blocklen - 12, "section header block at byte offset %d (%d bytes)" % (start, blocklen))
            body, tail = rest[:-4], struct.unpack(endian + "I", rest[-4:])[0]
            if tail != blocklen:
                raise ParseError("corrupt pcapng section header at byte offset %d: length %d at the start, %d at the end"
                                 % (start, blocklen, tail), stream.source)
        else:
            blocktype = struct.unpack(endian + "I", blocktype_raw)[0]
            blocklen = struct.unpack(endian + "I", _need(stream, 4, "block header at byte offset %d" % start))[0]
            if blocklen < 12 or blocklen % 4 or blocklen > MAX_RECORD:
                raise ParseError("corrupt pcapng block at byte offset %d (type %#x, length %d)"
                                 % (start, blocktype, blocklen), stream.source)
            rest = _need(stream, blocklen - 8, "block at byte offset %d (type %#x, %d bytes)"
                         % (start, blocktype, blocklen))
            body, tail = rest[:-4], struct.unpack(endian + "I", rest[-4:])[0]
            if tail != blocklen:
                raise ParseError("corrupt pcapng block at byte offset %d: length %d at the start, %d at the end"
                                 % (start, blocklen, tail), stream.source)
        blocktype_raw = None
        if blocktype == 1:              # interface description
            if len(body) < 8:
                raise ParseError("corrupt interface description block at byte offset %d" % start, stream.source)
            linktype, _reserved, snaplen = struct.unpack(endian + "HHI", body[:8])
            opts = _ng_options(body[8:], endian)
            offset = struct.unpack(endian + "q", opts[14])[0] if len(opts.get(14, b"")) == 8 else 0
            interfaces.append((linktype, snaplen, _tsresol(opts.get(9)), offset))
        elif blocktype in (6, 2, 3):    # enhanced / obsolete packet / simple packet
            number += 1
            if blocktype == 3:
                if len(body) < 4:
                    raise ParseError("corrupt simple packet block at byte offset %d" % start, stream.source)
                ifid, high, low = 0, None, None
                wirelen = struct.unpack(endian + "I", body[:4])[0]
                caplen = min(wirelen, len(body) - 4)
                data_off = 4
            else:
                if len(body) < 20:
                    raise ParseError("corrupt packet block at byte offset %d" % start, stream.source)
                if blocktype == 6:
                    ifid, high, low, caplen, wirelen = struct.unpack(endian + "IIIII", body[:20])
                else:
                    ifid, _drops, high, low, caplen, wirelen = struct.unpack(endian + "HHIIII", body[:20])
                data_off = 20
            if ifid >= len(interfaces):
                raise ParseError("corrupt: packet #%d at byte offset %d names interface %d, only %d described"
                                 % (number, start, ifid, len(interfaces)), stream.source)
            if data_off + caplen > len(body):
                raise ParseError("corrupt: packet #%d at byte offset %d claims %d captured bytes in a %d-byte block"
                                 % (number, start, caplen, blocklen), stream.source)
            linktype, snaplen, resol, tsoffset = interfaces[ifid]
            if blocktype == 3 and snaplen:
                caplen = min(caplen, snaplen)
            stamp = None if high is None else ((high << 32) | low) * resol + tsoffset
            yield stamp, linktype, body[data_off:data_off + caplen], wirelen


# --------------------------------------------------------------------------------------
# Link layer and IP


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


# --------------------------------------------------------------------------------------
# Flows


def _ts(value):
    return None if value is None else round(value, 6)


class _Flow(object):
    """One conversation, keyed by its initiator's 5-tuple ``(protocol, src, sport, dst, dport)``
    (ICMP echo: ``("icmp", src, id, dst, None)``)."""

    def __init__(self, key, family, index):
        self.key = key
        self.family = family
        self.index = index
        self.first_seen = None
        self.last_seen = None
        self.first_out = None
        self.packets_out = 0
        self.packets_in = 0
        self.icmp_errors = 0
        self.syns = 0
        self.replies = []
        self.answer = None       # the first reply: what the verdict rests on
        self.answer_time = None
        self.icmp = None

    def seen(self, stamp):
        if stamp is None:
            return
        if self.first_seen is None or stamp < self.first_seen:
            self.first_seen = stamp
        if self.last_seen is None or stamp > self.last_seen:
            self.last_seen = stamp

    def reply(self, entry, stamp):
        if len(self.replies) < MAX_REPLIES:
            self.replies.append(entry)
        if self.answer is None:
            self.answer = entry
            self.answer_time = stamp

    def endpoints(self):
        proto, src, sport, dst, dport = self.key
        if proto == "icmp":
            return {"protocol": proto, "src": src, "sport": None, "dst": dst, "dport": None}
        return {"protocol": proto, "src": src, "sport": sport, "dst": dst, "dport": dport}

    def result(self):
        proto = self.key[0]
        answer = None
        if self.answer is not None:
            answer = dict(self.answer)
            if answer["kind"] == "icmp":
                answer.update(icmp_type=answer["type"], icmp_code=answer["code"])
        state, reason = classify(proto, answer, self.family)
        rtt = None
        if self.answer_time is not None and self.first_out is not None and self.answer_time >= self.first_out:
            rtt = round((self.answer_time - self.first_out) * 1000.0, 3)
        out = self.endpoints()
        out.update({
            "family": "ipv%d" % self.family,
            "icmp_id": self.key[2] if proto == "icmp" else None,
            "state": state,
            "reason": reason,
            "first_seen": _ts(self.first_seen),
            "last_seen": _ts(self.last_seen),
            "rtt_ms": rtt,
            "packets": self.packets_out + self.packets_in + self.icmp_errors,
            "packets_out": self.packets_out,
            "packets_in": self.packets_in,
            "syns": self.syns if proto == "tcp" else None,
            "replies": list(self.replies),
            "icmp": self.icmp,
        })
        return out


def _icmp_entry(pkt, stamp, flow_key):
    """Describe an ICMP error: names from the shared tables, classification reason from probe."""
    family = pkt["family"]
    dst = flow_key[3]
    dummy, reason = classify(flow_key[0], {"kind": "icmp", "icmp_type": pkt["icmp_type"],
                                           "icmp_code": pkt["icmp_code"]}, family)
    return {
        "kind": "icmp",
        "time": _ts(stamp),
        "type": pkt["icmp_type"],
        "code": pkt["icmp_code"],
        "name": icmp_tables.icmp_name(family, pkt["icmp_type"], pkt["icmp_code"]),
        "reason": reason,
        "sender": pkt["src"],
        "sender_is_target": pkt["src"] == dst,
        "ttl": pkt["ttl"],
    }


def _valid_host(host):
    if host is None:
        return None
    try:
        return str(ipaddress.ip_address(str(host).strip()))
    except ValueError:
        raise InputError("invalid host %r: expected an IPv4 or IPv6 address" % (host,))


def _valid_max(value):
    if isinstance(value, bool):
        raise InputError("invalid max_packets %r: not a number" % (value,))
    try:
        num = int(value)
    except (TypeError, ValueError):
        raise InputError("invalid max_packets %r: not a number" % (value,))
    if num < 1 or (isinstance(value, float) and num != value):
        raise InputError("invalid max_packets %r: must be a whole number of at least 1" % (value,))
    return num


def analyze(path, max_packets=DEFAULT_MAX_PACKETS, host=None, port=None, allow_truncated=False):
    """Read the capture at ``path`` and explain it.

    Returns ``{path, format, link_types, packets, truncated, max_packets_reached, flows,
    icmp_errors, unanswered_syns, resets, summary, notes}`` (see the module's RETURN).
    ``host``/``port`` keep only the flows (and the ICMP errors and resets about them)
    with that address or port on either side; the analysis itself always sees every
    packet.  Raises InputError for bad options or an unreadable path, ParseError for a
    file that is not a capture, TruncatedCapture for a cut-off one (unless
    ``allow_truncated``: then what was read is explained and ``truncated`` is true).
    """
    max_packets = _valid_max(max_packets)
    host = _valid_host(host)
    port = None if port is None else parse_port(port)
    stream, fmt = open_capture(path)
    notes = []
    flows = {}
    order = []
    icmp_errors = []
    resets = []
    link_types = []
    skipped = {"not_ip": 0, "other": 0}
    count = 0
    truncated = False
    reached_max = False
    try:
        records = pcapng_records(stream) if fmt.startswith("pcapng") else pcap_records(stream)
        while True:
            if count >= max_packets:
                try:
                    next(records)
                    reached_max = True
                except StopIteration:
                    pass
                except ParseError:
                    reached_max = True      # more bytes follow; they are not read, so not judged
                if reached_max:
                    notes.append("stopped after max_packets=%d packets; the rest of the capture was not read"
                                 % max_packets)
                break
            try:
                stamp, linktype, frame, dummy = next(records)
            except StopIteration:
                break
            except TruncatedCapture as exc:
                if not allow_truncated:
                    raise
                truncated = True
                notes.append("%s; explained the %d packets before it" % (exc, count))
                break
            count += 1
            name = LINKTYPES.get(linktype, "LINKTYPE_%d" % linktype)
            if name not in link_types:
                link_types.append(name)
            l3 = network_layer(linktype, frame)
            if l3 is None:
                skipped["not_ip"] += 1
                continue
            pkt = decode(*l3)
            if pkt is None:
                skipped["other"] += 1
                continue
            _account(pkt, stamp, count, flows, order, icmp_errors, resets)
    finally:
        stream.fh.close()
    unsupported = [n for n in link_types if n.startswith("LINKTYPE_")]
    if unsupported:
        notes.append("packets of link type(s) %s cannot be decoded and were skipped" % ", ".join(unsupported))
    results = [f.result() for f in order]
    results, icmp_errors, resets = _filter(results, icmp_errors, resets, host, port)
    unanswered = [dict((k, f[k]) for k in ("family", "src", "sport", "dst", "dport", "syns", "first_seen", "last_seen"))
                  for f in results if f["protocol"] == "tcp" and f["reason"] == "no-response" and f["syns"]]
    summary = dict((s, 0) for s in STATES)
    for flow in results:
        summary[flow["state"]] += 1
    summary.update(packets=count, flows=len(results), icmp_errors=len(icmp_errors), unanswered_syns=len(unanswered),
                   resets=len(resets), skipped_not_ip=skipped["not_ip"], skipped_other=skipped["other"])
    return {"path": path, "format": fmt, "link_types": link_types, "packets": count, "truncated": truncated,
            "max_packets_reached": reached_max, "flows": results, "icmp_errors": icmp_errors,
            "unanswered_syns": unanswered, "resets": resets, "summary": summary, "notes": notes}


def _flow_for(flows, order, key, family):
    flow = flows.get(key)
    if flow is None:
        flow = flows[key] = _Flow(key, family, len(order))
        order.append(flow)
    return flow


def _account(pkt, stamp, number, flows, order, icmp_errors, resets):
    """Fold one decoded packet into the flow table."""
    kind = pkt["kind"]
    if kind in ("tcp", "udp"):
        fwd = (kind, pkt["src"], pkt["sport"], pkt["dst"], pkt["dport"])
        rev = (kind, pkt["dst"], pkt["dport"], pkt["src"], pkt["sport"])
        flags = pkt.get("flags", 0)
        syn_only = kind == "tcp" and flags & wire.TCP_SYN and not flags & wire.TCP_ACK
        if fwd in flows or (rev not in flows and (kind == "udp" or syn_only)):
            flow = _flow_for(flows, order, fwd, pkt["family"])
            flow.packets_out += 1
            if flow.first_out is None:
                flow.first_out = stamp
            if syn_only:
                flow.syns += 1
            direction = "initiator"
        elif rev in flows:
            flow = flows[rev]
            flow.packets_in += 1
            direction = "responder"
            entry = {"kind": None, "time": _ts(stamp), "sender": pkt["src"], "ttl": pkt["ttl"]}
            if kind == "udp":
                entry["kind"] = "udp"
            elif flags & wire.TCP_RST:
                entry["kind"] = "rst"
            elif flags & wire.TCP_SYN and flags & wire.TCP_ACK:
                entry["kind"] = "syn-ack"
            if entry["kind"] is not None:
                flow.reply(entry, stamp)
        else:
            flow = None             # mid-stream TCP whose start is not in the capture
            direction = None
        if flow is not None:
            flow.seen(stamp)
        if kind == "tcp" and flags & wire.TCP_RST:
            resets.append({
                "packet": number, "time": _ts(stamp), "family": "ipv%d" % pkt["family"], "sender": pkt["src"],
                "src": pkt["src"], "sport": pkt["sport"], "dst": pkt["dst"], "dport": pkt["dport"], "ttl": pkt["ttl"],
                "sent_by": direction,
                "answers_syn": bool(direction == "responder" and flow.packets_in == 1 and flow.syns),
                "flow": flow.endpoints() if flow is not None else None,
            })
        return
    if kind in ("echo", "echo-reply"):
        if kind == "echo":
            flow = _flow_for(flows, order, ("icmp", pkt["src"], pkt["icmp_id"], pkt["dst"], None), pkt["family"])
            flow.packets_out += 1
            if flow.first_out is None:
                flow.first_out = stamp
        else:
            flow = flows.get(("icmp", pkt["dst"], pkt["icmp_id"], pkt["src"], None))
            if flow is None:
                return
            flow.packets_in += 1
            flow.reply({"kind": "echo-reply", "time": _ts(stamp), "sender": pkt["src"], "ttl": pkt["ttl"]}, stamp)
        flow.seen(stamp)
        return
    if kind != "icmp-error":
        return
    key = pkt["quoted"]
    rev = (key[0], key[3], key[4], key[1], key[2]) if key[0] != "icmp" else None
    quotes = "request"
    if key in flows:
        flow = flows[key]
        matched = True
    elif rev is not None and rev in flows:
        flow = flows[rev]       # the error is about one of the responder's packets
        matched = True
        quotes = "reply"
    else:
        flow = _flow_for(flows, order, key, pkt["family"])   # the flow is known only from the quote
        matched = False
    entry = _icmp_entry(pkt, stamp, flow.key if quotes == "request" else key)
    flow.icmp_errors += 1
    flow.seen(stamp)
    if quotes == "request":
        if flow.icmp is None:
            flow.icmp = dict((k, entry[k]) for k in ("type", "code", "name", "reason", "sender", "sender_is_target",
                                                     "ttl", "time"))
        flow.reply(entry, stamp)
    err = dict(entry, packet=number, family="ipv%d" % pkt["family"], to=pkt["dst"], matched=matched, quotes=quotes,
               flow=flow.endpoints())
    err.pop("kind")
    icmp_errors.append(err)


def _filter(flows, icmp_errors, resets, host, port):
    if host is None and port is None:
        return flows, icmp_errors, resets

    def keep(ends, extra=()):
        if ends is None:
            return False
        if host is not None and host not in (ends["src"], ends["dst"]) + tuple(extra):
            return False
        if port is not None and port not in (ends["sport"], ends["dport"]):
            return False
        return True

    return ([f for f in flows if keep(f)],
            [e for e in icmp_errors if keep(e["flow"], (e["sender"],))],
            [r for r in resets if keep(r["flow"] or r)])
