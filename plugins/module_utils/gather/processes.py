# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which processes hold a socket, and who they are.

``/proc/<pid>/fd`` tells which processes hold each socket (each pid's fd table is read once,
:func:`scan_processes`); ``comm``, ``cmdline`` and ``status`` (Uid) describe those processes
(:func:`read_process`).  ``/proc/self/mountinfo`` and ``/proc/self/status`` tell whether the
``/proc`` mount hides other users' processes (``hidepid``, :func:`proc_hides_processes`), so
that a socket no visible process holds can be reported as of unknown owner rather than as held
by none.  User names come from the name service on the live host, else ``<root>/etc/passwd``.
"""

from __future__ import annotations

import os

from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import is_digits
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.procfs import list_dir, read_file


class Users(object):
    """uid -> user name, from the name service on the live host, else ``<root>/etc/passwd``."""

    def __init__(self, root):
        self.cache = {}
        self.table = None
        if os.path.realpath(root) != "/":
            self.table = {}
            try:
                text = read_file(os.path.join(root, "etc", "passwd"))
            except OSError:
                text = ""
            for line in text.splitlines():
                fields = line.split(":")
                if len(fields) > 2 and is_digits(fields[2]):
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
    for name in list_dir(proc):
        if not is_digits(name):
            continue
        fd_dir = os.path.join(proc, name, "fd")
        try:
            fds = list_dir(fd_dir)
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
                if not is_digits(link[8:-1]):
                    continue
                inode = int(link[8:-1])
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
        mountinfo = read_file(os.path.join(proc, "self", "mountinfo"))
        status = read_file(os.path.join(proc, "self", "status"))
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
            elif key == "gid" and is_digits(value):
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


def _text(data):
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def read_process(proc, pid, users):
    """``{pid, name, cmdline, uid, user}`` of one process, or None when it has gone."""
    base = os.path.join(proc, str(pid))
    try:
        # any process may name itself with bytes that are not UTF-8 (prctl PR_SET_NAME), and status
        # repeats that name: read bytes, decode with replacement characters
        name = _text(read_file(os.path.join(base, "comm"), "rb")).rstrip("\n")
        cmdline = read_file(os.path.join(base, "cmdline"), "rb")
        status = _text(read_file(os.path.join(base, "status"), "rb"))
    except FileNotFoundError:
        return None
    except PermissionError:
        name, cmdline, status = None, b"", ""
    except OSError:  # ESRCH and friends: it is exiting
        return None
    uid = None
    for line in status.splitlines():
        if line.startswith("Uid:"):
            fields = line.split()
            uid = int(fields[1]) if len(fields) > 1 and is_digits(fields[1]) else None
            break
    args = [a.decode("utf-8", "replace") for a in cmdline.split(b"\0") if a]
    return {"pid": pid, "name": name, "cmdline": " ".join(args), "uid": uid, "user": users.name(uid)}
