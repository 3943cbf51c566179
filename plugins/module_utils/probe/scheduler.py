# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probe scheduler: :class:`Probe` (one target/port/protocol and what came back),
per-address smoothed RTTs, :func:`run_pass` (paced sends, ``parallelism`` probes in
flight, retries of silent ones) and :func:`settle_rate_limited`.

An engine is any object with ``name``, ``max_parallel``, ``selector`` and the methods
``send(probe)``, ``receive(key)`` -> ``[(probe, reply)]``, ``finish(probe)`` and
``local_error(probe, exc)`` (see ``engine_connect`` and ``engine_raw``).

ICMP error rate limiting on the far side (Linux: a burst of 6 then one per
``icmp_ratelimit`` ms per destination) is handled by the settle phase: silent ports of a
target that sent ICMP errors are re-probed after the target's token bucket had time to
refill; a batch that comes back with no ICMP at all proves its silent ports silent.
Ports still ambiguous when ``rate_limit_budget`` runs out are marked ``rate_limited``.
"""

from __future__ import annotations

import time

from ansible_collections.netdiag.reachability.plugins.module_utils._common import icmp as icmp_tables
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import classify


class Probe(object):
    """One target/port/protocol being probed and what came back."""

    def __init__(self, desc, index):
        self.index = index
        self.target = desc["target"]
        self.address = desc["address"]
        self.family = desc["family"]
        self.port = desc["port"]
        self.protocol = desc["protocol"]
        self.attempts = 0
        self.sent_at = None
        self.first_sent = None
        self.deadline = None
        self.reply = None
        self.replied_at = None
        self.rtt = None
        self.rate_limited = False
        self.engine = None
        self.sock = None      # per-probe socket (connect engine)
        self.app = None

    @property
    def key(self):
        return (self.address, self.port, self.protocol)

    def record(self, reply, now):
        """Keep the first reply (a later copy of a retransmission changes nothing)."""
        if self.reply is not None:
            return
        if reply["kind"] == "icmp":
            reply.setdefault("icmp_name", icmp_tables.icmp_name(self.family, reply["icmp_type"], reply["icmp_code"]))
        reply.setdefault("sender", self.address)
        reply["sender_is_target"] = reply["sender"] == self.address
        reply.setdefault("ttl", None)
        self.reply = reply
        self.replied_at = now
        if self.sent_at is not None:
            self.rtt = max(0.0, now - self.sent_at)

    def result(self):
        state, reason = classify(self.protocol, self.reply, self.family)
        reply = None
        if self.reply is not None:
            reply = {
                "kind": self.reply["kind"],
                "icmp_type": self.reply.get("icmp_type"),
                "icmp_code": self.reply.get("icmp_code"),
                "icmp_name": self.reply.get("icmp_name"),
                "sender": self.reply["sender"],
                "sender_is_target": self.reply["sender_is_target"],
                "ttl": self.reply["ttl"],
            }
            for key in ("local_errno", "neighbour", "neighbour_dev"):
                if self.reply.get(key):
                    reply[key] = self.reply[key]
        out = {
            "target": self.target,
            "address": self.address,
            "family": "ipv%d" % self.family,
            "port": self.port,
            "protocol": self.protocol,
            "state": state,
            "reason": reason,
            "reply": reply,
            "rtt_ms": None if self.rtt is None else round(self.rtt * 1000.0, 3),
            "retries": max(0, self.attempts - 1),
            "rate_limited": bool(self.rate_limited and self.reply is None),
            "engine": self.engine,
        }
        if self.app is not None:
            out["app"] = self.app
        return out


class _RttStats(object):
    """Per-address smoothed RTT (RFC 6298) to shorten waits once replies are seen."""

    MIN_TIMEOUT = 0.2

    def __init__(self, max_timeout):
        self.max_timeout = max_timeout
        self.srtt = {}
        self.rttvar = {}

    def sample(self, address, rtt):
        if address not in self.srtt:
            self.srtt[address] = rtt
            self.rttvar[address] = rtt / 2.0
        else:
            self.rttvar[address] = 0.75 * self.rttvar[address] + 0.25 * abs(self.srtt[address] - rtt)
            self.srtt[address] = 0.875 * self.srtt[address] + 0.125 * rtt

    def timeout(self, address):
        if address not in self.srtt:
            return self.max_timeout
        rto = self.srtt[address] + 4 * self.rttvar[address]
        return min(self.max_timeout, max(self.MIN_TIMEOUT, rto * 2))


def run_pass(engine, probes, opts, rtt, retries):
    """Send every probe (re-sending silent ones up to ``retries`` times) and collect
    replies until each has one or has timed out.  Returns nothing; fills the probes."""
    interval = 1.0 / opts["rate"]
    parallelism = min(opts["parallelism"], engine.max_parallel)
    queue = list(reversed(probes))   # pop() from the end = first probe first
    inflight = {}
    next_send = time.monotonic()
    sel = engine.selector
    while queue or inflight:
        now = time.monotonic()
        while queue and len(inflight) < parallelism and now >= next_send:
            probe = queue.pop()
            if probe.reply is not None:
                continue
            probe.attempts += 1
            probe.sent_at = now
            if probe.first_sent is None:
                probe.first_sent = now
            probe.deadline = now + rtt.timeout(probe.address)
            try:
                engine.send(probe)
            except OSError as exc:
                reply = engine.local_error(probe, exc)
                if reply is None:
                    raise
                probe.record(reply, now)
                continue
            inflight[id(probe)] = probe
            next_send = max(next_send + interval, now - 0.05)  # allow a tiny burst after a stall
            now = time.monotonic()
        if not inflight and not queue:
            break
        wake = min([p.deadline for p in inflight.values()] or [now + 0.05])
        if queue and len(inflight) < parallelism:
            wake = min(wake, next_send)
        timeout = max(0.0, wake - time.monotonic())
        for key, _mask in sel.select(timeout):
            for probe, reply in engine.receive(key):
                now = time.monotonic()
                if probe.reply is None:
                    probe.record(reply, now)
                    if probe.rtt is not None and probe.attempts == 1:
                        rtt.sample(probe.address, probe.rtt)
                if id(probe) in inflight:
                    del inflight[id(probe)]
                    engine.finish(probe)
        now = time.monotonic()
        for pid, probe in list(inflight.items()):
            if probe.reply is not None:
                del inflight[pid]
                engine.finish(probe)
            elif now >= probe.deadline:
                del inflight[pid]
                engine.finish(probe)
                if probe.attempts <= retries:
                    queue.append(probe)
    # late replies still queued in the sockets
    for key, _mask in sel.select(0):
        for probe, reply in engine.receive(key):
            if probe.reply is None:
                probe.record(reply, time.monotonic())


def wait_late_replies(engine, probes, wait, since=None):
    """Keep listening for replies to the silent probes until ``wait`` seconds after each one's
    first send.  A router that cannot resolve the next hop's address (an absent host on its
    connected subnet) answers only when neighbour discovery gives up: Linux sends ICMP
    host-unreachable about 3 s after the first packet (3 solicitations, 1 s apart), later than
    a probe's timeout.  Only the raw engine still matches replies of finished probes.
    ``since``: count ``wait`` from then instead (probes sent again)."""
    silent = [p for p in probes if p.reply is None and p.first_sent is not None]
    if not silent or wait <= 0:
        return
    until = (since if since is not None else max(p.first_sent for p in silent)) + wait
    sel = engine.selector
    while any(p.reply is None for p in silent):
        timeout = until - time.monotonic()
        if timeout <= 0:
            break
        for key, _mask in sel.select(timeout):
            for probe, reply in engine.receive(key):
                if probe.reply is None:
                    probe.record(reply, time.monotonic())


def _icmp_error(probe):
    return probe.reply is not None and probe.reply["kind"] == "icmp" and probe.reply.get("icmp_type") not in (0, 129)


def last_icmp_errors(probes):
    """``{sender: monotonic time of its last ICMP error}`` among ``probes``' replies."""
    out = {}
    for p in probes:
        if _icmp_error(p):
            sender = p.reply.get("sender") or p.address
            when = p.replied_at if p.replied_at is not None else time.monotonic()
            out[sender] = max(out.get(sender, when), when)
    return out


def settle_rate_limited(engine, probes, opts, rtt, last_icmp):
    """Re-probe silent TCP/UDP ports of addresses that drew ICMP errors.

    ``last_icmp`` maps the sender of an ICMP error (the router or host it came from) -> monotonic
    time of its last error (see :func:`last_icmp_errors`).  Linux limits the errors a sender sends
    to one host with one token bucket, whatever they are about: after ``rate_limit_interval``
    without an error a sender has at least one token again.  A silent port of an address is in
    doubt when some sender answered a probe to that address with an ICMP error (it may have had
    no token left for this one); a round that brings no ICMP error back from any of those senders,
    all of which had a token, proves the address's silent ports silent.  When a sender answers in a
    round, the silences of every address it had answered for stay in doubt (the sender may have
    spent its one token on another address's port).  A sender that may have run out of tokens
    (more errors than its burst, see :class:`IcmpBudget`) puts every silent port in doubt, since
    the probe does not know which paths it is on.  The first round sends every doubtful port at
    once; after a round with an answer one port per address, doubling while none comes.  Ports
    left when the budget runs out are marked ``rate_limited``.
    """
    senders_of, arrivals = {}, []
    for probe in probes:
        if _icmp_error(probe):
            sender = probe.reply.get("sender") or probe.address
            senders_of.setdefault(probe.address, set()).add(sender)
            arrivals.append((probe.replied_at or 0.0, sender))
    # a sender that may have run out of tokens may also be the one that did not answer for an address it
    # never answered for (the probe does not know the paths): those silences are in doubt too
    budget, saturated = IcmpBudget(opts["rate_limit_interval"]), set()
    for when, sender in sorted(arrivals):
        if budget.receive(sender, when):
            saturated.add(sender)
    pools = {}
    for probe in probes:
        if probe.reply is None and probe.protocol in ("tcp", "udp"):
            candidates = senders_of.get(probe.address, set()) | saturated
            if candidates:
                senders_of[probe.address] = candidates
                pools.setdefault(probe.address, []).append(probe)
    if not pools:
        return
    now = time.monotonic()
    for senders in senders_of.values():
        for sender in senders:
            last_icmp.setdefault(sender, now)
    deadline = now + opts["rate_limit_budget"]
    batch = dict((addr, len(group)) for addr, group in pools.items())
    interval = opts["rate_limit_interval"]

    def due(addr):
        return max(last_icmp[s] for s in senders_of[addr]) + interval

    while pools and time.monotonic() < deadline:
        now = time.monotonic()
        ready = [a for a in pools if now >= due(a)]
        if not ready:
            wait = min(due(a) for a in pools) - now
            if now + wait >= deadline:
                break
            time.sleep(max(0.0, wait))
            continue
        sending = dict((addr, pools[addr][:batch[addr]]) for addr in ready)
        run_pass(engine, [p for group in sending.values() for p in group], opts, rtt, retries=0)
        now = time.monotonic()
        answered = set()
        for group in sending.values():
            for p in group:
                if _icmp_error(p):
                    sender = p.reply.get("sender") or p.address
                    answered.add(sender)
                    senders_of[p.address].add(sender)
        for sender in answered:
            last_icmp[sender] = now
        for addr, group in sending.items():
            resolved = set(id(p) for p in group if p.reply is not None)
            if senders_of[addr] & answered:
                batch[addr] = 1
            else:
                # no ICMP error from any sender it concerns while each had a token: really silent
                resolved.update(id(p) for p in group)
                batch[addr] = min(batch[addr] * 2, 256)
            pools[addr] = [p for p in pools[addr] if id(p) not in resolved]
            if not pools[addr]:
                del pools[addr]
    for group in pools.values():
        for probe in group:
            probe.rate_limited = True


class IcmpBudget(object):
    """An estimate of each ICMP error sender's token bucket towards this host, for traces.

    Linux answers a host with at most a burst of ``burst`` ICMP errors (time-exceeded and
    destination-unreachable alike) and then one per ``interval`` seconds
    (``net.ipv4.icmp_ratelimit``).  Many paths traced at once share their first hops, so a router
    near this host may run out while a wave is in flight and the TTLs it should have answered look
    silent.  :meth:`receive` counts an error from a sender and says when its bucket may be empty
    (keeping ``margin`` tokens for traffic sent before, e.g. by the probe); :meth:`wait` is how long
    until every given sender had ``interval`` since its last error, i.e. has a token again.
    """

    def __init__(self, interval, burst=6, margin=1):
        self.interval = float(interval)
        self.burst = float(burst)
        self.margin = float(margin)
        self.tokens = {}
        self.last = {}

    def level(self, sender, now):
        """Estimated tokens of ``sender`` at ``now``."""
        if sender not in self.last:
            return self.burst
        if self.interval <= 0:
            return self.burst
        return min(self.burst, self.tokens[sender] + (now - self.last[sender]) / self.interval)

    def receive(self, sender, now):
        """Count one ICMP error from ``sender`` that arrived at ``now``; True when the sender may
        have had no token left for the next one."""
        left = self.level(sender, now) - 1.0
        self.tokens[sender] = max(0.0, left)
        self.last[sender] = now
        return left < 1.0 + self.margin

    def wait(self, senders, now):
        """Seconds until each of ``senders`` had ``interval`` without sending an error."""
        due = [self.last[s] + self.interval for s in senders if s in self.last]
        return max([0.0] + [d - now for d in due])
