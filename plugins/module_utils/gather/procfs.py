# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network state ``/proc`` shows: socket tables, sysctls and counters.

- ``/proc/net/{tcp,tcp6,udp,udp6}``: every socket, with its state, owner uid, inode and
  queues (:func:`parse_proc_net`; :func:`is_listening` keeps what ``ss -l`` shows);
- ``/proc/sys/net/...``: somaxconn, ip_local_port_range, ICMP rate limits, rp_filter,
  ip_forward, bindv6only, ... (:func:`read_sysctls`);
- ``/proc/net/{netstat,snmp,snmp6}``: ListenOverflows, ListenDrops and friends
  (:func:`read_counters`).

``root`` points every reader at a copy of ``/proc`` (tests replay captured trees).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import is_digits

TCP_LISTEN = 0x0A  # include/net/tcp_states.h
TCP_CLOSE = 0x07  # an unconnected UDP socket

# (file under /proc/net, protocol, family)
PROC_NET_TABLES = (
    ("tcp", "tcp", 4),
    ("tcp6", "tcp", 6),
    ("udp", "udp", 4),
    ("udp6", "udp", 6),
)

# Sysctls that change reachability; rp_filter is added per interface.
SYSCTLS = (
    "net.core.somaxconn",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.icmp_ratelimit",
    "net.ipv4.icmp_msgs_per_sec",
    "net.ipv4.icmp_msgs_burst",
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.bindv6only",
)

# Counters, named as nstat names them: (file, section, field).
COUNTERS = (
    ("netstat", "TcpExt", "ListenOverflows"),
    ("netstat", "TcpExt", "ListenDrops"),
    ("netstat", "TcpExt", "TCPBacklogDrop"),
    ("netstat", "TcpExt", "TCPReqQFullDrop"),
    ("netstat", "TcpExt", "TCPReqQFullDoCookies"),
    ("netstat", "TcpExt", "SyncookiesSent"),
    ("netstat", "TcpExt", "SyncookiesRecv"),
    ("netstat", "TcpExt", "SyncookiesFailed"),
    ("snmp", "Tcp", "AttemptFails"),
    ("snmp", "Tcp", "PassiveOpens"),
    ("snmp", "Tcp", "OutRsts"),
    ("snmp", "Tcp", "InErrs"),
    ("snmp", "Udp", "NoPorts"),
    ("snmp", "Udp", "InErrors"),
    ("snmp", "Udp", "RcvbufErrors"),
    ("snmp", "Icmp", "OutDestUnreachs"),
    ("snmp6", None, "Udp6NoPorts"),
    ("snmp6", None, "Udp6InErrors"),
    ("snmp6", None, "Udp6RcvbufErrors"),
    ("snmp6", None, "Icmp6OutDestUnreachs"),
)


# --------------------------------------------------------------------------- reading files

def read_file(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def list_dir(path):
    return os.listdir(path)


# --------------------------------------------------------------------------- parsing

_HEX = frozenset("0123456789abcdefABCDEF")


def _hex(text, what, digits=None):
    """A field the kernel prints in hex (``%04X``, ``%08X``): ASCII hex digits only, ``digits`` of them
    when given (``int(x, 16)`` alone also takes ``0x``, ``_``, signs and other scripts' digits)."""
    if not text or not set(text) <= _HEX or (digits is not None and len(text) != digits):
        raise ValueError("%s %r is not %s hex digits" % (what, text, digits or "ASCII"))
    return int(text, 16)


def _dec(text, what):
    if not is_digits(text):
        raise ValueError("%s %r is not a decimal number" % (what, text))
    return int(text)


def _signed(text):
    """A decimal counter as the kernel prints it (``-1`` for MaxConn), ASCII digits only."""
    if not is_digits(text[1:] if text.startswith("-") else text):
        raise ValueError("%r is not a decimal number" % (text,))
    return int(text)


def decode_address(text, family, byteorder=sys.byteorder):
    """``0100007F`` -> ``127.0.0.1``: the kernel prints each 32-bit word in host order."""
    want = 8 if family == 4 else 32
    if len(text) != want:
        raise ValueError("address %r has %d hex digits, expected %d" % (text, len(text), want))
    _hex(text, "address", want)
    raw = bytes.fromhex(text)
    words = [raw[i:i + 4] for i in range(0, len(raw), 4)]
    if byteorder == "little":
        words = [w[::-1] for w in words]
    return socket.inet_ntop(socket.AF_INET if family == 4 else socket.AF_INET6, b"".join(words))


def address_scope(address):
    """``any``, ``loopback`` or ``specific`` for a bound address (v4-mapped as its IPv4)."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return "any"
    if ip.is_loopback:
        return "loopback"
    return "specific"


def parse_proc_net(text, protocol, family, source=None):
    """Parse ``/proc/net/{tcp,tcp6,udp,udp6}`` into a list of socket dicts (all states).

    A missing header, a truncated or garbled line raises ParseError naming the line.
    """
    source = source or "/proc/net/%s%s" % (protocol, "6" if family == 6 else "")
    lines = text.splitlines()
    if not lines or lines[0].split()[:2] != ["sl", "local_address"]:
        raise ParseError("not a socket table (header %r)" % (lines[0] if lines else ""), source, 1)
    sockets = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split()
        try:
            if len(fields) < 10 or not fields[0].endswith(":"):
                raise ValueError("expected at least 10 fields, got %d" % len(fields))
            _dec(fields[0][:-1], "slot")
            local_addr, sep, local_port = fields[1].partition(":")
            if not sep:
                raise ValueError("local address %r has no ':PORT'" % fields[1])
            address = decode_address(local_addr, family)
            port = _hex(local_port, "port", 4)  # the kernel prints %04X: at most 65535
            state = _hex(fields[3], "state", 2)
            tx_queue, sep, rx_queue = fields[4].partition(":")
            if not sep:
                raise ValueError("queues %r are not TX:RX" % fields[4])
            tx_queue, rx_queue = _hex(tx_queue, "tx_queue"), _hex(rx_queue, "rx_queue")
            uid = _dec(fields[7], "uid")
            inode = _dec(fields[9], "inode")
        except ValueError as exc:
            raise ParseError("malformed socket line %r: %s" % (line.strip(), exc), source, number)
        sockets.append({
            "protocol": protocol,
            "family": family,
            "address": address,
            "port": port,
            "state": state,
            "tx_queue": tx_queue,
            "rx_queue": rx_queue,
            "uid": uid,
            "inode": inode,
        })
    return sockets


def is_listening(sock):
    """TCP in LISTEN, or UDP unconnected and bound to a port (what ``ss -l`` shows)."""
    if sock["protocol"] == "tcp":
        return sock["state"] == TCP_LISTEN
    return sock["state"] == TCP_CLOSE and sock["port"] != 0


def parse_kv_tables(text, source):
    """``/proc/net/netstat`` and ``/proc/net/snmp``: pairs of ``Section: names`` / ``Section: values``."""
    tables = {}
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) % 2:
        raise ParseError("odd number of lines (%d): a header without values" % len(lines), source)
    for i in range(0, len(lines), 2):
        head, values = lines[i].split(), lines[i + 1].split()
        if not head or head[0] != values[0] or not head[0].endswith(":"):
            raise ParseError("header %r does not match values %r" % (lines[i][:40], lines[i + 1][:40]),
                             source, i + 2)
        if len(head) != len(values):
            raise ParseError("section %s has %d names but %d values"
                             % (head[0][:-1], len(head) - 1, len(values) - 1), source, i + 2)
        try:
            tables[head[0][:-1]] = dict(zip(head[1:], (_signed(v) for v in values[1:])))
        except ValueError as exc:
            raise ParseError("section %s: %s" % (head[0][:-1], exc), source, i + 2)
    return tables


def parse_snmp6(text, source):
    """``/proc/net/snmp6``: one ``Name value`` per line."""
    out = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not is_digits(fields[1]):
            raise ParseError("malformed counter line %r" % line, source, number)
        out[fields[0]] = int(fields[1])
    return out


def parse_sysctl_value(text):
    """``4096`` -> 4096, ``32768\\t60999`` -> [32768, 60999], anything else as a string."""
    fields = text.split()
    try:
        values = [_signed(f) for f in fields]
    except ValueError:
        return text.strip()
    if len(values) == 1:
        return values[0]
    return values


# --------------------------------------------------------------------------- reading

def read_sysctls(root="/"):
    """The reachability sysctls as ``{dotted.name: value}``; absent ones are left out."""
    base = os.path.join(root, "proc", "sys")
    names = list(SYSCTLS)
    try:
        confs = sorted(list_dir(os.path.join(base, "net", "ipv4", "conf")))
    except OSError:
        confs = []
    names += ["net.ipv4.conf.%s.rp_filter" % conf for conf in confs]
    out = {}
    for name in names:
        # interface names may contain dots; only the fixed parts are separators
        if name.startswith("net.ipv4.conf."):
            rel = ["net", "ipv4", "conf", name[len("net.ipv4.conf."):-len(".rp_filter")], "rp_filter"]
        elif name.startswith("net.ipv6.conf."):
            rel = ["net", "ipv6", "conf", name[len("net.ipv6.conf."):].rsplit(".", 1)[0],
                   name.rsplit(".", 1)[1]]
        else:
            rel = name.split(".")
        try:
            out[name] = parse_sysctl_value(read_file(os.path.join(base, *rel)))
        except OSError:
            continue
    return out


def read_counters(root="/"):
    """ListenOverflows, ListenDrops and friends, named as nstat names them (TcpExtListenOverflows)."""
    base = os.path.join(root, "proc", "net")
    parsed = {}
    for name in ("netstat", "snmp", "snmp6"):
        path = os.path.join(base, name)
        try:
            text = read_file(path)
        except OSError:
            continue
        parsed[name] = parse_snmp6(text, path) if name == "snmp6" else parse_kv_tables(text, path)
    out = {}
    for fname, section, field in COUNTERS:
        table = parsed.get(fname, {})
        if section is not None:
            table = table.get(section, {})
        if field in table:
            out[(section or "") + field] = table[field]
    return out
