# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel as witness: ``nft monitor trace`` for exactly the probe's packets.

:func:`arm` adds a temporary table ``inet netdiag_trace`` that sets ``nftrace`` on the probe's
packets (source, destination, protocol, port; TCP SYNs only) at prerouting before conntrack and
NAT, plus two empty base chains at the very end of the input and forward hooks that mark how far
a packet got.  It starts ``nft -a monitor trace`` under a detached watchdog process that removes
the table when :func:`collect` asks for it, or by itself when the window (``timeout``) ends:
the table never outlives the window, also when the controller is interrupted.

:func:`collect` stops the watchdog, checks that the table is gone (removing it if need be), and
returns one record per traced packet (:func:`parse_monitor`): every rule and policy the packet
met, the first drop (with its position in its chain, so a rule read by iptables-save, which has
no handle, can be named too) and how far it got (``reached``: input, forward or neither).

Only nf_tables rules are seen (nftables, iptables-nft, firewalld's nftables backend); rules loaded
with iptables-legacy are invisible to the trace (:func:`legacy_rules_present` says so).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid

from ansible_collections.netdiag.reachability.plugins.module_utils._common.commands import run_command
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    BackendUnavailable, InputError, MissingDependency, NetdiagError)

TABLE = "netdiag_trace"
FAMILY = "inet"
MAX_PACKETS = 256
STATE_DIR = "/run/netdiag-reachability"
_MARK_CHAINS = {"seen_input": "input", "seen_forward": "forward"}


# --------------------------------------------------------------------------- the table

def normalize_packets(packets):
    """Check the packets to trace: ``[{src, dst, protocol, port}]`` with addresses of one family each."""
    if not isinstance(packets, list) or not packets:
        raise InputError("packets must be a non-empty list of {src, dst, protocol, port}, got %r" % (packets,))
    if len(packets) > MAX_PACKETS:
        raise InputError("at most %d packets can be traced at once, got %d" % (MAX_PACKETS, len(packets)))
    out = []
    for i, p in enumerate(packets):
        if not isinstance(p, dict):
            raise InputError("packets[%d] must be a dict, got %r" % (i, p))
        try:
            src, dst = ipaddress.ip_address(str(p.get("src"))), ipaddress.ip_address(str(p.get("dst")))
        except ValueError:
            raise InputError("packets[%d]: src and dst must be IP addresses, got %r and %r" % (i, p.get("src"), p.get("dst")))
        if src.version != dst.version:
            raise InputError("packets[%d]: src %s and dst %s are of different families" % (i, src, dst))
        proto = p.get("protocol", "tcp")
        if proto not in ("tcp", "udp"):
            raise InputError("packets[%d]: protocol must be tcp or udp, got %r" % (i, proto))
        port = p.get("port")
        if isinstance(port, str) and re.match(r"^[0-9]{1,5}$", port):
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InputError("packets[%d]: port must be 1-65535, got %r" % (i, p.get("port")))
        pkt = {"src": str(src), "dst": str(dst), "protocol": proto, "port": port}
        if pkt not in out:
            out.append(pkt)
    return out


def table_script(packets):
    """The nft script that (re)creates the trace table for ``packets`` (normalized)."""
    rules = []
    for p in packets:
        ip = "ip6" if ":" in p["dst"] else "ip"
        match = "tcp dport %d tcp flags syn / syn,ack" % p["port"] if p["protocol"] == "tcp" else "udp dport %d" % p["port"]
        rules.append("add rule %s %s select_packets %s saddr %s %s daddr %s %s meta nftrace set 1" % (
            FAMILY, TABLE, ip, p["src"], ip, p["dst"], match))
    lines = ["add table %s %s" % (FAMILY, TABLE), "delete table %s %s" % (FAMILY, TABLE),
             "add table %s %s" % (FAMILY, TABLE),
             "add chain %s %s select_packets { type filter hook prerouting priority -350; policy accept; }" % (FAMILY, TABLE),
             "add chain %s %s seen_input { type filter hook input priority 1000; policy accept; }" % (FAMILY, TABLE),
             "add chain %s %s seen_forward { type filter hook forward priority 1000; policy accept; }" % (FAMILY, TABLE)]
    return "\n".join(lines + rules) + "\n"


# --------------------------------------------------------------------------- the monitor's output

_LINE = re.compile(r"^trace id (\S+) (\S+) (\S+) (\S+) (.*?)\s*$")
_VERDICT = re.compile(r"\(verdict (\w+)(?: (\S+))?\)\s*$")
_HANDLE = re.compile(r"# handle (\d+)")
_COUNTER = re.compile(r"counter packets \d+ bytes \d+")
_FIELDS = {"saddr": r"ip6? saddr (\S+)", "daddr": r"ip6? daddr (\S+)", "id": r"ip id (\d+)",
           "proto": r"\b(tcp|udp) sport", "sport": r"(?:tcp|udp) sport (\d+)", "dport": r"(?:tcp|udp) dport (\d+)",
           "iif": r'iif "([^"]+)"'}


def _packet_fields(text):
    out = {}
    for key, pattern in _FIELDS.items():
        m = re.search(pattern, text)
        if m:
            out[key] = int(m.group(1)) if key in ("id", "sport", "dport") else m.group(1)
    return out


def parse_monitor(text):
    """Packets traced by ``nft -a monitor trace`` output, in order of first sight.

    A packet may show several trace ids (the kernel can start a new one at a later hook), so
    records are joined by what routing and NAT leave alone: source address, source port and IP id.
    Each record: ``src, dst, protocol, port`` (as seen first, before DNAT), ``iif``, ``events``
    (``{family, table, chain, kind: rule|policy, handle, verdict, target, text}`` outside the trace
    table), ``verdict`` (``drop`` when a rule or policy dropped it, else ``accept``), ``decided_by``
    (the dropping event) and ``reached`` (``input`` or ``forward`` when the packet passed every rule of
    that hook, None when it got to neither: dropped, or discarded by the routing decision)."""
    records, by_key, by_id = [], {}, {}
    for raw in (text or "").splitlines():
        m = _LINE.match(raw.strip())
        if not m:
            continue
        tid, family, table, chain, rest = m.groups()
        if rest.startswith("packet:"):
            f = _packet_fields(rest)
            key = (f.get("saddr"), f.get("sport"), f.get("id"))
            rec = by_key.get(key) if key != (None, None, None) else None
            if rec is None:
                rec = {"src": f.get("saddr"), "dst": f.get("daddr"), "protocol": f.get("proto"), "port": f.get("dport"),
                       "sport": f.get("sport"), "iif": f.get("iif"), "events": [], "verdict": None, "decided_by": None,
                       "reached": None, "_seen": set()}
                records.append(rec)
                by_key[key] = rec
            by_id[tid] = rec
            continue
        rec = by_id.get(tid)
        if rec is None:
            continue
        if table == TABLE and family == FAMILY:
            if chain in _MARK_CHAINS:
                if rec["reached"] != "forward":
                    rec["reached"] = _MARK_CHAINS[chain]
            continue
        event = {"family": family, "table": table, "chain": chain, "handle": None, "verdict": None, "target": None}
        if rest.startswith("rule "):
            vm = _VERDICT.search(rest)
            hm = _HANDLE.search(rest)
            event.update(kind="rule", handle=int(hm.group(1)) if hm else None,
                         text=re.sub(r"\s+", " ", _COUNTER.sub("counter", _VERDICT.sub("", _HANDLE.split(rest[5:])[0]))).strip(),
                         verdict=vm.group(1) if vm else None, target=vm.group(2) if vm else None)
        elif rest.startswith("policy "):
            event.update(kind="policy", verdict=rest.split()[1], text=rest)
        elif rest.startswith("verdict "):
            parts = rest.split()
            event.update(kind="verdict", verdict=parts[1], target=parts[2] if len(parts) > 2 else None, text=rest)
        else:
            continue
        ident = (event["family"], event["table"], event["chain"], event["kind"], event["handle"], event["verdict"])
        if ident in rec["_seen"]:
            continue  # a retransmission, or the same packet seen again: one event is enough
        rec["_seen"].add(ident)
        rec["events"].append(event)
        if event["verdict"] == "drop" and rec["decided_by"] is None:
            rec["decided_by"] = {k: event[k] for k in ("family", "table", "chain", "kind", "handle", "text")}
    for rec in records:
        rec.pop("_seen", None)
        rec["verdict"] = "drop" if rec["decided_by"] else "accept"
        rec.pop("sport", None)
    return records


# --------------------------------------------------------------------------- arm, collect

def _nft():
    path = shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None)
    if path is None:
        raise MissingDependency("nft", "nftables", "the kernel trace uses nft monitor trace")
    return path


def _run(args, stdin=None):
    return run_command(args, stdin=stdin) or (127, "", "%s: not found" % args[0])


def _netns_id():
    try:
        return str(os.stat("/proc/self/ns/net").st_ino)
    except OSError:
        return "default"


def state_path():
    """Where the watchdog of this network namespace keeps its state (one trace per namespace)."""
    return os.path.join(STATE_DIR, "kernel-trace-%s.json" % _netns_id())


def table_present(nft=None):
    rc, _out, _err = _run([nft or _nft(), "list", "table", FAMILY, TABLE])
    return rc == 0


def legacy_rules_present():
    """True when iptables-legacy holds rules the trace cannot see (any non-empty legacy table)."""
    for tool in ("iptables-legacy-save", "ip6tables-legacy-save"):
        path = shutil.which(tool)
        if not path:
            continue
        rc, out, _err = _run([path])
        if rc == 0 and any(line.startswith("-A ") for line in out.splitlines()):
            return True
    return False


def _remove_table(nft):
    if table_present(nft):
        _run([nft, "delete", "table", FAMILY, TABLE])
    return not table_present(nft)


def _read_state(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _stop_watchdog(state, wait=5.0):
    pid = (state or {}).get("watchdog_pid")
    if not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.time() + wait
    while time.time() < deadline and _alive(pid):
        time.sleep(0.05)


class TraceBusy(NetdiagError):
    """Another run's trace is active in this network namespace (its watchdog lives)."""


def arm(packets, timeout=60.0, force=False):
    """Add the trace table and start the monitor; returns ``{table, packets, expires_in, run,
    replaced_stale}``.  The table is gone ``timeout`` seconds later at the latest.  ``run`` names
    this trace: :func:`collect` given it touches nothing of another run's trace.  Another run's live
    trace is refused (:class:`TraceBusy`) unless ``force``; what a dead run left is replaced."""
    packets = normalize_packets(packets)
    if not 5 <= float(timeout) <= 3600:
        raise InputError("timeout must be 5-3600 seconds, got %r" % (timeout,))
    nft = _nft()
    path = state_path()
    stale = _read_state(path)
    replaced = False
    if stale is not None and _alive(stale.get("watchdog_pid")) and not force:
        raise TraceBusy("another kernel trace (run %s) is active on this host until %s; it removes itself then "
                        "(or stop it with state=absent, or start with force=true)" % (
                            stale.get("run") or "?", time.strftime("%H:%M:%S", time.localtime(stale.get("deadline") or 0))))
    if stale is not None:
        _stop_watchdog(stale)
        replaced = True
    if table_present(nft):
        replaced = True
    # the watchdog first, the table second: whatever happens to this process from here on, the
    # watchdog removes the table at the end of the window
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    out_path = path[:-len(".json")] + ".out"
    ready = path + ".ready"
    for stale_file in (out_path, ready, path + ".done", path):
        if os.path.exists(stale_file):
            os.unlink(stale_file)
    run = uuid.uuid4().hex[:12]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the watchdog, a detached child
        try:
            _watchdog(nft, path, out_path, ready, float(timeout), run)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)  # the intermediate child exits at once; the watchdog lives on
    deadline = time.time() + 5.0
    while time.time() < deadline and not os.path.exists(ready):
        time.sleep(0.05)
    if not os.path.exists(ready):
        state = _read_state(path)
        _stop_watchdog(state)
        _remove_table(nft)
        raise BackendUnavailable("nft monitor trace did not start within 5 s")
    rc, _out, err = _run([nft, "-f", "-"], stdin=table_script(packets))
    if rc != 0:
        _stop_watchdog(_read_state(path))
        _remove_table(nft)
        raise BackendUnavailable("could not add the trace table (nft -f: %s)" % err.strip())
    return {"table": "%s %s" % (FAMILY, TABLE), "packets": packets, "expires_in": float(timeout), "run": run,
            "replaced_stale": replaced}


def _watchdog(nft, path, out_path, ready, timeout, run=None):  # pragma: no cover - runs detached, tested in the lab
    """Second fork: a session of its own, no stdio (ssh must not wait for it), the monitor as its
    child; on SIGTERM or at the deadline it stops the monitor and removes the table."""
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    stop = {"now": False}

    def _term(_signum, _frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _term)
    signal.signal(signal.SIGHUP, _term)
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    monitor = subprocess.Popen([nft, "-a", "monitor", "trace"], stdout=out, stderr=out, close_fds=True)
    deadline = time.time() + timeout
    with open(path + ".tmp", "w") as fh:
        json.dump({"watchdog_pid": os.getpid(), "monitor_pid": monitor.pid, "out": out_path,
                   "deadline": deadline, "run": run}, fh)
    os.rename(path + ".tmp", path)
    time.sleep(0.3)  # the monitor subscribes to the trace events
    with open(ready, "w") as fh:
        fh.write("ready\n")
    try:
        while not stop["now"] and time.time() < deadline and monitor.poll() is None:
            time.sleep(0.1)
    finally:
        if monitor.poll() is None:
            monitor.terminate()
            try:
                monitor.wait(2)
            except subprocess.TimeoutExpired:
                monitor.kill()
        for _i in range(3):
            if _remove_table(nft):
                break
            time.sleep(0.2)
        with open(path + ".done", "w") as fh:
            fh.write("expired\n" if time.time() >= deadline else "stopped\n")


def rule_positions(nft):
    """``{(family, table, chain, handle): 1-based position in the chain}`` from ``nft -j list ruleset``."""
    rc, out, _err = _run([nft, "-j", "list", "ruleset"])
    if rc != 0:
        return {}
    try:
        items = json.loads(out).get("nftables") or []
    except ValueError:
        return {}
    positions, counts = {}, {}
    for item in items:
        rule = item.get("rule") if isinstance(item, dict) else None
        if not isinstance(rule, dict):
            continue
        chain = (rule.get("family"), rule.get("table"), rule.get("chain"))
        counts[chain] = counts.get(chain, 0) + 1
        positions[chain + (rule.get("handle"),)] = counts[chain]
    return positions


def neighbours(addresses):
    """The neighbour table's entries for ``addresses`` (``ip -j neigh show``): ``[{address, dev, state}]``;
    a router that forwarded packets to an address on its own subnet where no host answers holds it as
    FAILED or INCOMPLETE."""
    wanted = set(addresses)
    ip = shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if os.path.exists(p)), None)
    if not wanted or ip is None:
        return []
    rc, out, _err = _run([ip, "-j", "neigh", "show"])
    if rc != 0:
        return []
    try:
        entries = json.loads(out or "[]")
    except ValueError:
        return []
    found = []
    for e in entries if isinstance(entries, list) else []:
        if isinstance(e, dict) and e.get("dst") in wanted:
            state = e.get("state")
            found.append({"address": e["dst"], "dev": e.get("dev"),
                          "state": "/".join(state) if isinstance(state, list) else state})
    return found


def collect(grace=1.0, run=None):
    """Stop the trace, make sure the table is gone, and return what the kernel saw:
    ``{traces, removed, window_expired, armed}``.  With ``run`` (what :func:`arm` returned): when
    the trace in place is another run's (this one was replaced, or stopped by someone else),
    nothing is touched and the result says ``replaced``."""
    nft = _nft()
    path = state_path()
    state = _read_state(path)
    if run is not None and (state or {}).get("run") != run:
        return {"armed": False, "traces": [], "removed": False, "neighbours": [], "removed_by_collect": False,
                "window_expired": False, "replaced": True}
    if grace:
        time.sleep(min(float(grace), 10.0))
    positions = rule_positions(nft)
    had_table = table_present(nft)
    _stop_watchdog(state)
    done = None
    try:
        with open(path + ".done") as fh:
            done = fh.read().strip()
    except OSError:
        pass
    removed = _remove_table(nft)
    if not removed:
        raise NetdiagError("the trace table %s %s could not be removed: remove it with nft delete table %s %s"
                           % (FAMILY, TABLE, FAMILY, TABLE))
    text = ""
    out_path = (state or {}).get("out") or path[:-len(".json")] + ".out"
    try:
        with open(out_path) as fh:
            text = fh.read()
    except OSError:
        pass
    for leftover in (path, path + ".ready", path + ".done", path + ".tmp", out_path):
        if os.path.exists(leftover):
            os.unlink(leftover)
    traces = parse_monitor(text)
    for rec in traces:
        d = rec.get("decided_by")
        if d and d.get("handle") is not None:
            d["position"] = positions.get((d["family"], d["table"], d["chain"], d["handle"]))
    return {"armed": state is not None, "traces": traces, "removed": True,
            "neighbours": neighbours({r["dst"] for r in traces if r.get("reached") == "forward" and r.get("dst")}),
            "removed_by_collect": had_table, "window_expired": done == "expired", "replaced": False}
