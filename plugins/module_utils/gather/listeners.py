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

The readers live in ``procfs.py`` (socket tables, sysctls, counters), ``processes.py`` (who holds
a socket) and ``sock_diag.py`` (netlink); this module puts their answers together.
``root`` points every reader at a copy of ``/proc`` (tests replay captured trees).
Which listener accepts a destination is the explainer's question (``plugin_utils/listener_match.py``).
"""

from __future__ import annotations

import ipaddress
import os

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    InputError,
    ParseError,
)
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import (
    parse_port,
    parse_port_range,
)
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.routes import read_routes
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.procfs import (
    PROC_NET_TABLES, address_scope, is_listening, parse_proc_net, read_counters, read_file, read_sysctls)
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.processes import (
    Users, proc_hides_processes, read_process, scan_processes)
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.sock_diag import parse_sock_diag, sock_diag_dump_raw

PROTOCOLS = ("tcp", "udp")


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


def _not_privileged(geteuid=os.geteuid):
    """Why another process's files may be hidden: "not root?" only when this is not root."""
    if geteuid() != 0:
        return "not root?"
    return "root without CAP_SYS_PTRACE, e.g. in a container or a user namespace?"


def read_listeners(root="/", ports=None, protocols=PROTOCOLS, include_process=True, diag="auto"):
    """Read the listening sockets under ``root``.

    ``diag``: ``"auto"`` (netlink when ``root`` is ``/``), ``None`` (don't), or a callable
    returning ``{(protocol, family): raw sock_diag reply}`` (tests replay captures).

    Returns ``{"listeners": [...], "process_scan": {...}, "warnings": [...]}``.
    """
    wanted = parse_port_filter(ports, protocols)
    proc = os.path.join(root, "proc")
    users = Users(root)
    warnings = []
    sockets = []
    for fname, protocol, family in PROC_NET_TABLES:
        path = os.path.join(proc, "net", fname)
        try:
            text = read_file(path)
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
        warnings.append("could not read the open files of %d processes (%s); %d listeners have no "
                        "visible process (owner unknown)" % (len(unreadable), _not_privileged(), len(hidden)))
    if hidepid is not None:
        warnings.append("/proc is mounted with hidepid=%s: other users' processes are not listed (%s); "
                        "%d listeners have no visible process (owner unknown)" % (hidepid, _not_privileged(), len(hidden)))
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
    routes = read_routes(root)
    result["routes"] = routes["routes"]
    result["warnings"] = list(result.get("warnings") or []) + routes["warnings"]
    return result
