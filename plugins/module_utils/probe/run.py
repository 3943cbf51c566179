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
