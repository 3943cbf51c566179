# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read capture containers: classic pcap (both byte orders, micro- and nanosecond
stamps) and pcapng, both optionally gzipped.  :func:`open_capture` detects the format;
:func:`pcap_records` / :func:`pcapng_records` yield ``(timestamp, linktype, data,
wirelen)`` per packet.

A small pure-Python reader, not scapy: scapy's readers treat a truncated record or block
as the end of the file (``EOFError`` -> ``StopIteration``), so a cut-off capture would
silently look like a short one.  Here a truncated or corrupt file raises
:class:`TruncatedCapture` / ``ParseError`` naming the packet number and byte offset.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, ParseError

# A pcap record or pcapng block claiming more than this is corruption, not a packet: the length is
# checked before the read, so a header claiming 4 GiB costs nothing.  Real captures stay far below it
# (the largest snaplen tcpdump and Wireshark write is 256 KiB).
MAX_RECORD = 16 * 1024 * 1024


class TruncatedCapture(ParseError):
    """The capture ends in the middle of a record or block."""


PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
GZIP_MAGIC = b"\x1f\x8b"


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
            raise ParseError("corrupt: packet #%d at byte offset %d claims %d captured bytes (at most %d)"
                             % (number, start, incl, MAX_RECORD), stream.source)
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
            if blocklen < 28 or blocklen % 4 or blocklen > MAX_RECORD:
                raise ParseError("corrupt pcapng section header at byte offset %d (length %d; at most %d)"
                                 % (start, blocklen, MAX_RECORD), stream.source)
            rest = _need(stream, blocklen - 12, "section header block at byte offset %d (%d bytes)" % (start, blocklen))
            body, tail = rest[:-4], struct.unpack(endian + "I", rest[-4:])[0]
            if tail != blocklen:
                raise ParseError("corrupt pcapng section header at byte offset %d: length %d at the start, %d at the end"
                                 % (start, blocklen, tail), stream.source)
        else:
            blocktype = struct.unpack(endian + "I", blocktype_raw)[0]
            blocklen = struct.unpack(endian + "I", _need(stream, 4, "block header at byte offset %d" % start))[0]
            if blocklen < 12 or blocklen % 4 or blocklen > MAX_RECORD:
                raise ParseError("corrupt pcapng block at byte offset %d (type %#x, length %d; at most %d)"
                                 % (start, blocktype, blocklen, MAX_RECORD), stream.source)
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
