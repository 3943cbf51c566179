# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe ``address:port/protocol`` targets from this host and classify them with nmap's
semantics, keeping the evidence (reply kind, ICMP type/code and name, sender, TTL, rtt).

Two engines, one scheduler:

* ``raw`` (root / CAP_NET_RAW, IPv4): TCP SYNs sent on a raw socket from one reserved
  source port, replies read from raw TCP and ICMP sockets, ICMP errors matched to the
  probe through the quoted header.  UDP datagrams go out of an ordinary socket bound to
  a reserved port; ICMP echo on the raw ICMP socket.  Sees reply TTLs of everything.
* ``connect`` (any user): non-blocking ``connect()`` / connected UDP sockets with
  ``IP_RECVERR``; the error queue yields the exact ICMP type, code, sender and TTL.
  It cannot see the TTL of a SYN-ACK or RST (``reply.ttl`` is null for those), and
  ICMP echo needs ``net.ipv4.ping_group_range`` to include the user's group.

Probes are in flight concurrently (``parallelism``), paced (``rate`` packets/s), bounded
(``timeout``, ``retries``, ``max_probes``).  ICMP error rate limiting on the far side
(Linux: a burst of 6 then one per ``icmp_ratelimit`` ms per destination) is handled by a
settle phase: silent ports of a target that sent ICMP errors are re-probed after the
target's token bucket had time to refill; a batch that comes back with no ICMP at all
proves its silent ports silent.  Ports still ambiguous when ``rate_limit_budget`` runs
out are returned with ``rate_limited: true``.

This module is the entry point (:func:`probe`) and picks the engine
(:func:`choose_engine`); the pieces live in ``targets`` (input validation and target
expansion), ``scheduler`` (probes, pacing, retries, the settle phase),
``engine_connect`` / ``engine_raw`` (the engines, over the packet codec in ``wire``)
and ``app_check``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import STATES
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import BackendUnavailable
from ansible_collections.netdiag.reachability.plugins.module_utils.probe.app_check import app_check
from ansible_collections.netdiag.reachability.plugins.module_utils.probe.engine_connect import ConnectEngine, check_ping_socket
from ansible_collections.netdiag.reachability.plugins.module_utils.probe.engine_raw import RawEngine, raw_available
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import neighbours
from ansible_collections.netdiag.reachability.plugins.module_utils.probe.scheduler import (
    Probe, _RttStats, last_icmp_errors, run_pass, settle_rate_limited, wait_late_replies)
from ansible_collections.netdiag.reachability.plugins.module_utils.probe.targets import expand_targets, normalize_options


def choose_engine(requested):
    """Resolve ``auto`` to ``raw`` or ``connect``; returns (name, why)."""
    if requested == "raw":
        if not raw_available():
            raise BackendUnavailable("engine=raw needs raw sockets (root or CAP_NET_RAW); use engine=connect or auto")
        return "raw", "requested"
    if requested == "connect":
        return "connect", "requested"
    if raw_available():
        return "raw", "raw sockets available"
    return "connect", "no raw sockets (not root): using connect() with IP_RECVERR; SYN-ACK/RST TTLs are not visible"


# --------------------------------------------------------------------------------------
# Addresses on this host's links that did not resolve


def _neighbour_reply(probe, entry):
    """What the kernel did with a packet to an on-link address nobody answers ARP/ND for: dropped it
    here, as a connect() would say with EHOSTUNREACH - a local host-unreachable naming the entry."""
    v4 = probe.family == 4
    return {"kind": "icmp", "icmp_type": 3 if v4 else 1, "icmp_code": 1 if v4 else 3, "sender": "local", "ttl": None,
            "local_errno": "EHOSTUNREACH", "neighbour": entry["state"], "neighbour_dev": entry["dev"]}


def _local_unreachable(probe):
    return probe.reply is not None and probe.reply.get("sender") == "local" and \
        probe.reply.get("local_errno") == "EHOSTUNREACH"


def _host_unreachable(probe):
    """An ICMP host-unreachable (or IPv6 address-unreachable): for an address on this host's own link it
    can only come from this host's kernel, which reports its own failed ARP / ND to itself."""
    r = probe.reply
    return r is not None and r.get("kind") == "icmp" and r.get("sender") != "local" and \
        (r.get("icmp_type"), r.get("icmp_code")) == ((3, 1) if probe.family == 4 else (1, 3))


def recheck_unresolved(engine, probes, opts, rtt, listen=True, read=neighbours.read_neighbours, sleep=time.sleep):
    """Probes to addresses on this host's own links whose neighbour entry failed (ARP/ND unanswered).

    A silent probe to such an address is sent again once (a lost ARP exchange - a busy link - is not a
    missing host), waiting up to ``unreachable_wait`` for the kernel to finish asking (``listen``: the
    raw engine, which also takes late replies meanwhile); still silent with the entry FAILED or
    INCOMPLETE, it gets the local host-unreachable the kernel's drop amounts to, naming the entry.
    A connect() that failed with EHOSTUNREACH gets the entry named too (no route and no neighbour
    look the same to it).  Returns notes."""
    silent = [p for p in probes if p.reply is None or _local_unreachable(p) or _host_unreachable(p)]
    if not silent:
        return []
    table = read()
    if table is None:
        return []
    doubtful = [p for p in silent if neighbours.unresolved(table, p.address)]
    if not doubtful:
        return []
    again = [p for p in doubtful if p.reply is None]
    if again:
        start = time.monotonic()
        run_pass(engine, again, opts, rtt, opts["retries"])
        if listen:
            wait_late_replies(engine, again, opts["unreachable_wait"], since=start)
        table = read() or {}
        while time.monotonic() < start + opts["unreachable_wait"] and any(
                p.reply is None and (table.get(p.address) or {}).get("state") == "INCOMPLETE" for p in again):
            sleep(0.2)      # the kernel is still asking
            table = read() or {}
    named = set()
    for p in doubtful:
        entry = neighbours.unresolved(table, p.address)
        if entry is None:
            continue
        if p.reply is None:
            p.record(_neighbour_reply(p, entry), time.monotonic())
        else:
            if _host_unreachable(p):     # this host's kernel told itself (from its own address): the same drop
                p.reply.update(sender="local", sender_is_target=False, local_errno="EHOSTUNREACH")
            p.reply.setdefault("neighbour", entry["state"])
            p.reply.setdefault("neighbour_dev", entry["dev"])
        named.add(p.address)
    notes = []
    if again:
        answered = sorted(set(p.address for p in again if p.address not in named))
        notes.append("%d probe(s) to %d address(es) on this host's links were sent again because their neighbour "
                     "entry had not resolved%s" % (len(again), len(set(p.address for p in again)),
                                                   "; answered the second time: %s" % ", ".join(answered) if answered else ""))
    if named:
        notes.append("no answer to ARP/neighbour discovery on this host's link for %s" % ", ".join(sorted(named)))
    return notes


def output_discards(root="/proc/net"):
    """This host's count of its own packets it discarded on output (Ip OutDiscards + Ip6OutDiscards: a
    neighbour table full, a queue full), or None when /proc does not say."""
    total, found = 0, False
    try:
        with open(root + "/snmp") as fh:
            rows = [line.split() for line in fh if line.startswith("Ip:")]
        if len(rows) >= 2 and "OutDiscards" in rows[0]:
            total += int(rows[1][rows[0].index("OutDiscards")])
            found = True
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(root + "/snmp6") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 2 and parts[0] == "Ip6OutDiscards":
                    total += int(parts[1])
                    found = True
    except (OSError, ValueError):
        pass
    return total if found else None


def _mark_discards(results, before, after):
    """Silent results of a probe during which this host discarded its own packets: that silence may be
    this host's, not the network's.  Returns the note, or None."""
    if before is None or after is None or after <= before:
        return None
    silent = [r for r in results if r["reply"] is None]
    for r in silent:
        r["local_discards"] = after - before
    if not silent:
        return None
    return ("this host discarded %d of its own packets on output during the probe (IpOutDiscards: a full "
            "neighbour table - dmesg says 'neighbor table overflow' - or a full queue); %d silent result(s) may "
            "not be silent on the wire" % (after - before, len(silent)))


# --------------------------------------------------------------------------------------
# Entry point


def probe(targets, **options):
    """Probe ``targets`` and return ``{engine, engine_reason, results, summary, elapsed_s}``.

    ``targets``: list of ``{host, ports, protocol}`` (see :func:`expand_targets`).
    ``options``: see ``targets.DEFAULTS``.  Raises InputError for bad input and
    BackendUnavailable when the requested engine cannot run.
    """
    opts = normalize_options(options)
    descs = expand_targets(targets, opts["max_probes"], opts["family"])
    engine_name, why = choose_engine(opts["engine"])
    start = time.monotonic()
    discards = output_discards()
    probes = [Probe(d, i) for i, d in enumerate(descs)]
    groups = {}
    for p in probes:
        name = engine_name
        if name == "raw" and p.family == 6:
            name = "connect"    # the raw engine is IPv4 only
        groups.setdefault(name, []).append(p)
    for fam in sorted(set(p.family for p in groups.get("connect", []) if p.protocol == "icmp")):
        check_ping_socket(fam)
    notes = []
    if engine_name == "raw" and "connect" in groups:
        notes.append("IPv6 targets were probed with the connect engine (the raw engine is IPv4 only)")
    for name, group in groups.items():
        engine = RawEngine(opts) if name == "raw" else ConnectEngine(opts)
        try:
            rtt = _RttStats(opts["timeout"])
            run_pass(engine, group, opts, rtt, opts["retries"])
            settle_rate_limited(engine, group, opts, rtt, last_icmp_errors(group))
            if name == "raw":
                wait_late_replies(engine, group, opts["unreachable_wait"])
            notes.extend(recheck_unresolved(engine, group, opts, rtt, listen=name == "raw"))
        finally:
            engine.close()
    if opts["app_check"] != "none":
        opened = [p for p in probes if p.protocol == "tcp" and p.reply is not None and p.reply["kind"] == "syn-ack"]
        if opened:
            with ThreadPoolExecutor(max_workers=min(16, len(opened))) as pool:
                futures = [(p, pool.submit(app_check, p.address, p.family, p.port, opts["app_check"],
                                           opts["app_timeout"])) for p in opened]
                for p, fut in futures:
                    p.app = fut.result()
    results = [p.result() for p in probes]
    note = _mark_discards(results, discards, output_discards())
    if note:
        notes.append(note)
    summary = dict((s, 0) for s in STATES)
    for r in results:
        summary[r["state"]] += 1
    summary["rate_limited"] = sum(1 for r in results if r["rate_limited"])
    return {
        "engine": engine_name,
        "engine_reason": why,
        "notes": notes,
        "results": results,
        "summary": summary,
        "elapsed_s": round(time.monotonic() - start, 3),
    }
