# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Listening sockets, the sysctls and the counters that decide whether a port is reachable.

Everything is read from ``/proc`` (no ``ss``/``netstat``, no subprocess):

- ``/proc/net/{tcp,tcp6,udp,udp6}``: every TCP socket in LISTEN and every unconnected
  bound UDP socket, with owner uid, inode and (TCP) current accept-queue depth;
- ``/proc/<pid>/fd``: which processes hold each socket (each pid's fd table is read once);
  ``comm``, ``cmdline`` and ``status`` (Uid) of those processes; ``/proc/self/mountinfo`` and
  ``/proc/self/status`` to tell whether the ``/proc`` mount hides other users' processes
  (``hidepid``), so a socket no visible process holds is reported as of unknown owner rather
  than as held by none;
- ``/proc/sys/net/...``: somaxconn, ip_local_port_range, ICMP rate limits, rp_filter,
  ip_forward, bindv6only, ...;
- ``/proc/net/{netstat,snmp,snmp6}``: ListenOverflows, ListenDrops and friends.

Two facts are not in ``/proc``: the accept backlog a TCP socket was given by ``listen()``
and whether an IPv6 socket has ``IPV6_V6ONLY``.  Both come from one NETLINK_SOCK_DIAG dump
per (protocol, family), the interface ``ss`` uses; when it is unavailable they are
``None`` and a warning says so.

``root`` points every reader at a copy of ``/proc`` (tests replay captured trees).
Which listener accepts a destination is the explainer's question (``plugin_utils/listener_match.py``).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import sys

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    InputError,
    ParseError,
)
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import (
    parse_port,
    parse_port_range,
)

PROTOCOLS = ("tcp", "udp")

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


# --------------------------------------------------------------------------- parsing

def decode_address(text, family, byteorder=sys.byteorder):
    """``0100007F`` -> ``127.0.0.1``: the kernel prints each 32-bit word in host order."""
    want = 8 if family == 4 else 32
    if len(text) != want:
        raise ValueError("address %r has %d hex digits, expected %d" % (text, len(text), want))
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
            int(fields[0][:-1])
            local_addr, sep, local_port = fields[1].partition(":")
            if not sep:
                raise ValueError("local address %r has no ':PORT'" % fields[1])
            address = decode_address(local_addr, family)
            port = int(local_port, 16)
            if len(fields[3]) != 2:
                raise ValueError("state %r is not two hex digits" % fields[3])
            state = int(fields[3], 16)
            tx_queue, sep, rx_queue = fields[4].partition(":")
            if not sep:
                raise ValueError("queues %r are not TX:RX" % fields[4])
            tx_queue, rx_queue = int(tx_queue, 16), int(rx_queue, 16)
            uid = int(fields[7])
            inode = int(fields[9])
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


def parse_sock_diag(data, source="sock_diag"):
    """Parse a NETLINK_SOCK_DIAG dump reply: ``{inode: {backlog, depth, v6only}}``.

    ``backlog`` is ``sk_max_ack_backlog`` (TCP LISTEN), ``depth`` ``sk_ack_backlog``,
    ``v6only`` the socket's IPV6_V6ONLY (IPv6 only, else None).
    """
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
            raise ParseError("netlink error %d (%s)" % (errno, os.strerror(errno)), source)
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
            tables[head[0][:-1]] = dict(zip(head[1:], (int(v) for v in values[1:])))
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
        if len(fields) != 2 or not fields[1].isdigit():
            raise ParseError("malformed counter line %r" % line, source, number)
        out[fields[0]] = int(fields[1])
    return out


def parse_sysctl_value(text):
    """``4096`` -> 4096, ``32768\\t60999`` -> [32768, 60999], anything else as a string."""
    fields = text.split()
    try:
        values = [int(f) for f in fields]
    except ValueError:
        return text.strip()
    if len(values) == 1:
        return values[0]
    return values


# --------------------------------------------------------------------------- reading

def _read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def _listdir(path):
    return os.listdir(path)


class _Users(object):
    """uid -> user name, from the name service on the live host, else ``<root>/etc/passwd``."""

    def __init__(self, root):
        self.cache = {}
        self.table = None
        if os.path.realpath(root) != "/":
            self.table = {}
            try:
                text = _read(os.path.join(root, "etc", "passwd"))
            except OSError:
                text = ""
            for line in text.splitlines():
                fields = line.split(":")
                if len(fields) > 2 and fields[2].isdigit():
                    self.table.setdefault(int(fields[2]), fields[0])

    def name(self, uid):
        if uid is None:
            return None
        if uid not in self.cache:
            if self.table is not None:
                self.cache[uid] = self.table.get(uid)
            else:
                try:
                    import pwd
                    self.cache[uid] = pwd.getpwuid(uid).pw_name
                except (KeyError, ImportError):
                    self.cache[uid] = None
        return self.cache[uid]


def scan_processes(proc, inodes):
    """Map socket inodes to the pids holding them, reading each pid's fd table once.

    Returns ``(holders, unreadable)``: ``{inode: set(pids)}`` and the sorted pids whose
    fd table could not be read (permission).  Processes that exit meanwhile are skipped.
    """
    holders = {}
    unreadable = []
    if not inodes:
        return holders, unreadable
    for name in _listdir(proc):
        if not name.isdigit():
            continue
        fd_dir = os.path.join(proc, name, "fd")
        try:
            fds = _listdir(fd_dir)
        except PermissionError:
            unreadable.append(int(name))
            continue
        except OSError:  # exited, or not a process directory
            continue
        pid = int(name)
        for fd in fds:
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                try:
                    inode = int(link[8:-1])
                except ValueError:
                    continue
                if inode in inodes:
                    holders.setdefault(inode, set()).add(pid)
    return holders, sorted(unreadable)


CAP_SYS_PTRACE = 19  # include/uapi/linux/capability.h


def proc_hides_processes(proc):
    """Whether the ``proc`` mount may hide other users' processes from this reader.

    With ``hidepid=2`` (``invisible``) or ``hidepid=4`` (``ptraceable``) the processes the reader
    may not inspect are not listed at all, so their open files can be neither read nor found
    unreadable.  Read from ``<proc>/self/mountinfo`` (the mount at ``/proc``) and
    ``<proc>/self/status`` (CAP_SYS_PTRACE, which sees everything, and the groups the ``gid=``
    option exempts).  Returns the ``hidepid`` value (a string) when processes may be hidden,
    else None (also when those files cannot be read: a replayed tree without them).
    """
    try:
        mountinfo = _read(os.path.join(proc, "self", "mountinfo"))
        status = _read(os.path.join(proc, "self", "status"))
    except OSError:
        return None
    hidepid, gid = None, None
    for line in mountinfo.splitlines():
        pre, sep, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if not sep or len(fields) < 6 or len(tail) < 3 or fields[4] != "/proc" or tail[0] != "proc":
            continue
        hidepid, gid = None, None  # the last mount at /proc is the visible one
        for opt in (fields[5] + "," + tail[2]).split(","):
            key, dummy, value = opt.partition("=")
            if key == "hidepid":
                hidepid = value
            elif key == "gid" and value.isdigit():
                gid = int(value)
    if hidepid not in ("2", "invisible", "4", "ptraceable"):
        return None
    groups, cap_eff = set(), 0
    for line in status.splitlines():
        key, dummy, value = line.partition(":")
        try:
            if key == "CapEff":
                cap_eff = int(value.strip(), 16)
            elif key == "Groups":
                groups.update(int(g) for g in value.split())
            elif key == "Gid":
                groups.add(int(value.split()[1]))  # effective gid
        except (ValueError, IndexError):
            continue
    if cap_eff & (1 << CAP_SYS_PTRACE):
        return None
    if hidepid in ("2", "invisible") and gid is not None and gid in groups:
        return None
    return hidepid


def read_process(proc, pid, users):
    """``{pid, name, cmdline, uid, user}`` of one process, or None when it has gone."""
    base = os.path.join(proc, str(pid))
    try:
        name = _read(os.path.join(base, "comm")).rstrip("\n")
        cmdline = _read(os.path.join(base, "cmdline"), "rb")
        status = _read(os.path.join(base, "status"))
    except FileNotFoundError:
        return None
    except PermissionError:
        name, cmdline, status = None, b"", ""
    uid = None
    for line in status.splitlines():
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
            break
    args = [a.decode("utf-8", "replace") for a in cmdline.split(b"\0") if a]
    return {"pid": pid, "name": name, "cmdline": " ".join(args), "uid": uid, "user": users.name(uid)}


def read_sysctls(root="/"):
    """The reachability sysctls as ``{dotted.name: value}``; absent ones are left out."""
    base = os.path.join(root, "proc", "sys")
    names = list(SYSCTLS)
    try:
        confs = sorted(_listdir(os.path.join(base, "net", "ipv4", "conf")))
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
            out[name] = parse_sysctl_value(_read(os.path.join(base, *rel)))
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
            text = _read(path)
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


def parse_port_filter(ports, protocols=PROTOCOLS):
    """Options ``ports`` / ``protocols`` -> predicate ``(protocol, port) -> bool``.

    ``ports`` items: ``80``, ``"8000-8010"``, or ``"53/udp"`` (a protocol narrows that item).
    """
    protocols = list(protocols or PROTOCOLS)
    for proto in protocols:
        if proto not in PROTOCOLS:
            raise InputError("invalid protocol %r: expected one of %s" % (proto, ", ".join(PROTOCOLS)))
    ranges = []
    for item in ports or []:
        text = str(item).strip().lower() if not isinstance(item, bool) else item
        proto = None
        if isinstance(text, str) and "/" in text:
            text, dummy, proto = text.partition("/")
            if proto not in PROTOCOLS:
                raise InputError("invalid port %r: unknown protocol %r (expected one of %s)"
                                 % (item, proto, ", ".join(PROTOCOLS)))
        if isinstance(text, str) and "-" in text:
            first, last = parse_port_range(text)
        else:
            first = last = parse_port(text)
        ranges.append((first, last, proto))

    def wanted(protocol, port):
        if protocol not in protocols:
            return False
        if not ranges:
            return True
        return any(first <= port <= last and proto in (None, protocol) for first, last, proto in ranges)
    return wanted


def read_listeners(root="/", ports=None, protocols=PROTOCOLS, include_process=True, diag="auto"):
    """Read the listening sockets under ``root``.

    ``diag``: ``"auto"`` (netlink when ``root`` is ``/``), ``None`` (don't), or a callable
    returning ``{(protocol, family): raw sock_diag reply}`` (tests replay captures).

    Returns ``{"listeners": [...], "process_scan": {...}, "warnings": [...]}``.
    """
    wanted = parse_port_filter(ports, protocols)
    proc = os.path.join(root, "proc")
    users = _Users(root)
    warnings = []
    sockets = []
    for fname, protocol, family in PROC_NET_TABLES:
        path = os.path.join(proc, "net", fname)
        try:
            text = _read(path)
        except FileNotFoundError:
            if family == 6:  # IPv6 disabled
                continue
            raise ParseError("socket table missing", path)
        except OSError as exc:
            raise ParseError("cannot read socket table: %s" % exc, path)
        for sock in parse_proc_net(text, protocol, family, path):
            if is_listening(sock) and wanted(protocol, sock["port"]):
                sockets.append(sock)

    diag_info = {}
    if diag == "auto":
        diag = sock_diag_dump_raw if os.path.realpath(root) == "/" else None
    if diag is not None:
        try:
            replies = diag()
        except OSError as exc:
            replies = {}
            warnings.append("sock_diag netlink unavailable (%s): TCP backlog and IPV6_V6ONLY unknown" % exc)
        for key in sorted(replies):
            try:
                diag_info.update(parse_sock_diag(replies[key], "sock_diag %s/ipv%d" % key))
            except ParseError as exc:
                warnings.append("%s: TCP backlog and IPV6_V6ONLY unknown for those sockets" % exc)
    else:
        warnings.append("sock_diag not queried: TCP backlog and IPV6_V6ONLY unknown")

    holders, unreadable, hidepid = {}, [], None
    if include_process:
        holders, unreadable = scan_processes(proc, set(s["inode"] for s in sockets if s["inode"]))
        hidepid = proc_hides_processes(proc)
    # complete: every process this /proc has was inspected, so a socket no process was seen
    # holding is held by none (a kernel socket, or its process just exited)
    complete = not unreadable and hidepid is None
    processes = {}
    listeners = []
    for sock in sockets:
        info = diag_info.get(sock["inode"], {})
        v6only = info.get("v6only") if sock["family"] == 6 else None
        listener = {
            "protocol": sock["protocol"],
            "family": "ipv%d" % sock["family"],
            "address": sock["address"],
            "port": sock["port"],
            "scope": address_scope(sock["address"]),
            "bindv6only": v6only,
            "accepts_ipv4": _accepts_ipv4(sock["family"], sock["address"], v6only),
            "inode": sock["inode"],
            "uid": sock["uid"],
            "user": users.name(sock["uid"]),
            "accept_queue": sock["rx_queue"] if sock["protocol"] == "tcp" else None,
            "accept_backlog": info.get("backlog") if sock["protocol"] == "tcp" else None,
            "pids": [],
            "process": None,
            "processes": [],
            "processes_complete": None,
            "owner": None,
        }
        if include_process:
            for pid in sorted(holders.get(sock["inode"], ())):
                if pid not in processes:
                    processes[pid] = read_process(proc, pid, users)
                if processes[pid] is not None:
                    listener["processes"].append(dict(processes[pid]))
            listener["pids"] = [p["pid"] for p in listener["processes"]]
            listener["process"] = listener["processes"][0]["name"] if listener["processes"] else None
            listener["processes_complete"] = complete
            if listener["processes"]:
                listener["owner"] = "process"
            else:
                listener["owner"] = "none" if complete else "unknown"
        listeners.append(listener)
    listeners.sort(key=lambda l: (l["protocol"], l["port"], l["family"], l["address"], l["inode"]))
    hidden = [l for l in listeners if l["owner"] == "unknown"]
    if unreadable:
        warnings.append("could not read the open files of %d processes (not root?); %d listeners have no "
                        "visible process (owner unknown)" % (len(unreadable), len(hidden)))
    if hidepid is not None:
        warnings.append("/proc is mounted with hidepid=%s: other users' processes are not listed (not root?); "
                        "%d listeners have no visible process (owner unknown)" % (hidepid, len(hidden)))
    return {
        "listeners": listeners,
        "process_scan": {
            "enabled": bool(include_process),
            "complete": complete if include_process else None,
            "unreadable_pids": unreadable,
        },
        "warnings": warnings,
    }


def _accepts_ipv4(family, address, v6only):
    if family == 4:
        return True
    ip = ipaddress.ip_address(address)
    if ip.ipv4_mapped is not None:
        return True
    if ip.is_unspecified:
        return None if v6only is None else not v6only
    return False


def gather(root="/", ports=None, protocols=PROTOCOLS, include_process=True, diag="auto"):
    """Everything listeners_info returns: listeners, sysctls, counters, process_scan, warnings."""
    result = read_listeners(root, ports=ports, protocols=protocols,
                            include_process=include_process, diag=diag)
    result["sysctls"] = read_sysctls(root)
    result["counters"] = read_counters(root)
    return result
