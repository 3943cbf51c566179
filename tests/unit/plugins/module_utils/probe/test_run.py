# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Classification table, input validation and the rate-limit settle logic of the probe."""

import socket

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common import verdicts
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import scheduler
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import targets as probe_targets
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError


def icmp(t, c, sender="10.0.0.2", target=True):
    return {"kind": "icmp", "icmp_type": t, "icmp_code": c, "sender": sender, "sender_is_target": target}


# What nmap -sS / -sU --reason prints, and where we deliberately differ (unreachable).
@pytest.mark.parametrize("protocol,reply,family,expected", [
    ("tcp", {"kind": "syn-ack"}, 4, ("open", "syn-ack")),
    ("tcp", {"kind": "rst"}, 4, ("closed", "reset")),
    ("tcp", None, 4, ("filtered", "no-response")),
    ("tcp", icmp(3, 3), 4, ("filtered", "port-unreach")),          # firewalld iptables backend
    ("tcp", icmp(3, 10), 4, ("filtered", "host-prohibited")),      # iptables REJECT default of RHEL
    ("tcp", icmp(3, 13), 4, ("filtered", "admin-prohibited")),     # firewalld nftables backend
    ("tcp", icmp(3, 13, target=False), 4, ("filtered", "admin-prohibited")),  # router reject
    ("tcp", icmp(3, 1, target=False), 4, ("unreachable", "host-unreach")),
    ("tcp", icmp(3, 0, target=False), 4, ("unreachable", "net-unreach")),
    ("tcp", icmp(11, 0, target=False), 4, ("unreachable", "time-exceeded")),
    ("udp", {"kind": "udp"}, 4, ("open", "udp-response")),
    ("udp", None, 4, ("open|filtered", "no-response")),
    ("udp", icmp(3, 3), 4, ("closed", "port-unreach")),
    ("udp", icmp(3, 3, target=False), 4, ("filtered", "port-unreach")),  # a hop rejects: not the port
    ("udp", icmp(3, 13), 4, ("filtered", "admin-prohibited")),
    ("icmp", {"kind": "echo-reply"}, 4, ("open", "echo-reply")),
    ("icmp", None, 4, ("filtered", "no-response")),
    ("icmp", icmp(3, 10), 4, ("filtered", "host-prohibited")),
    ("tcp", icmp(1, 1), 6, ("filtered", "admin-prohibited")),
    ("udp", icmp(1, 4), 6, ("closed", "port-unreach")),
    ("tcp", icmp(1, 3), 6, ("unreachable", "addr-unreach")),
    ("tcp", icmp(3, 0), 6, ("unreachable", "time-exceeded")),
])
def test_classification_table(protocol, reply, family, expected):
    assert verdicts.classify(protocol, reply, family) == expected


def test_every_classification_is_a_known_state():
    for state, _reason in verdicts.REPLY_TABLE.values():
        assert state in verdicts.STATES
    assert set(verdicts.ICMP_TABLE.values()) <= set(verdicts.STATES)


def test_expand_targets_ports_lists_and_ranges():
    out = probe_targets.expand_targets([
        {"host": "127.0.0.1", "ports": [22, "80-82", "53/udp"]},
        {"host": "127.0.0.1", "protocol": "udp", "ports": ["5353"]},
        {"host": "127.0.0.1", "protocol": "icmp"},
        {"host": "127.0.0.1", "ports": ["80"]},            # duplicate, dropped
    ])
    assert [(d["port"], d["protocol"]) for d in out] == [
        (22, "tcp"), (80, "tcp"), (81, "tcp"), (82, "tcp"), (53, "udp"), (5353, "udp"), (None, "icmp")]
    assert {d["address"] for d in out} == {"127.0.0.1"}


@pytest.mark.parametrize("targets,needle", [
    ([{"host": "127.0.0.1", "ports": [70000]}], "70000"),
    ([{"host": "127.0.0.1", "ports": ["80-70000"]}], "70000"),
    ([{"host": "127.0.0.1", "ports": ["abc"]}], "abc"),
    ([{"host": "127.0.0.1", "ports": [0]}], "'0'"),
    ([{"host": "127.0.0.1", "ports": [80], "protocol": "sctpx"}], "sctpx"),
    ([{"host": "127.0.0.1", "ports": ["80/sctp"]}], "sctp"),
    ([{"host": "127.0.0.1", "protocol": "udp"}], "needs ports"),
    ([{"host": "127.0.0.1", "protocol": "icmp", "ports": [1]}], "icmp takes no ports"),
    ([{"host": "127.0.0.1", "ports": [1], "proto": "tcp"}], "proto"),
    ([{"host": "", "ports": [1]}], "''"),
    ([], "non-empty"),
])
def test_bad_targets_name_the_bad_value(targets, needle):
    with pytest.raises(InputError) as exc:
        probe_targets.expand_targets(targets)
    assert needle in str(exc.value)


def test_unresolvable_name_is_named(monkeypatch):
    def fail(*_a, **_k):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(InputError) as exc:
        probe_targets.expand_targets([{"host": "no-such-host.example.invalid", "ports": [80]}])
    assert "no-such-host.example.invalid" in str(exc.value)


def test_max_probes_bounds_the_expansion():
    with pytest.raises(InputError) as exc:
        probe_targets.expand_targets([{"host": "127.0.0.1", "ports": ["1-65535"]}], max_probes=1000)
    assert "1000" in str(exc.value)
    assert len(probe_targets.expand_targets([{"host": "127.0.0.1", "ports": ["1-1000"]}], max_probes=1000)) == 1000


@pytest.mark.parametrize("options,needle", [
    ({"timeout": -1}, "timeout"),
    ({"timeout": "soon"}, "soon"),
    ({"timeout": float("nan")}, "not a finite number"),
    ({"rate_limit_budget": "inf"}, "not a finite number"),
    ({"retries": 2.5}, "2.5"),
    ({"rate": 0}, "rate"),
    ({"engine": "scapy"}, "scapy"),
    ({"app_check": "smtp"}, "smtp"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_options_name_the_bad_value(options, needle):
    with pytest.raises(InputError) as exc:
        probe_targets.normalize_options(options)
    assert needle in str(exc.value)


def test_defaults_are_bounded():
    opts = probe_targets.normalize_options({})
    assert 0 < opts["timeout"] <= 5 and opts["retries"] >= 1 and opts["rate"] > 0
    assert opts["max_probes"] >= 1000 and opts["rate_limit_budget"] > 0


# ------------------------------------------------------------------ settle phase, simulated


class FakeRateLimitedHost(object):
    """An engine double that answers like a Linux host whose ICMP errors are rate-limited:
    a token bucket of ``burst`` tokens refilled one per ``interval`` seconds; rejected ports
    cost a token, dropped ports are silent.  Time is simulated, the logic is the real one."""

    name = "fake"
    max_parallel = 1000

    def __init__(self, rejected, dropped, clock, burst=6, interval=1.0, sender=None):
        self.rejected, self.dropped, self.clock = set(rejected), set(dropped), clock
        self.sender = sender    # a router that rejects for every address (one bucket), else the address itself
        self.tokens, self.burst, self.interval, self.last = float(burst), burst, interval, clock.now
        self.replies = []
        self.selector = self

    def select(self, timeout):
        self.clock.now += timeout
        out, self.replies = self.replies, []
        return [(r, None) for r in out]

    def send(self, p):
        p.engine = "fake"
        self.tokens = min(self.burst, self.tokens + (self.clock.now - self.last) / self.interval)
        self.last = self.clock.now
        if (p.port in self.rejected or (p.address, p.port) in self.rejected) and self.tokens >= 1:
            self.tokens -= 1
            self.replies.append((p, {"kind": "icmp", "icmp_type": 3, "icmp_code": 13,
                                     "sender": self.sender or p.address}))

    def receive(self, key):
        return [key]

    def finish(self, p):
        pass

    def local_error(self, p, exc):
        return None


class Clock(object):
    now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, s):
        self.now += s


def _run(monkeypatch, rejected, dropped, budget):
    clock = Clock()
    monkeypatch.setattr(scheduler.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(scheduler.time, "sleep", clock.sleep)
    eng = FakeRateLimitedHost(rejected, dropped, clock)
    opts = probe_targets.normalize_options({"rate_limit_budget": budget, "rate": 100000})
    probes = [scheduler.Probe({"target": "h", "address": "10.0.0.2", "family": 4, "port": port, "protocol": "tcp"}, i)
              for i, port in enumerate(sorted(set(rejected) | set(dropped)))]
    rtt = scheduler._RttStats(opts["timeout"])
    scheduler.run_pass(eng, probes, opts, rtt, opts["retries"])
    scheduler.settle_rate_limited(eng, probes, opts, rtt, scheduler.last_icmp_errors(probes))
    return dict((p.port, p.result()) for p in probes)


def test_no_rejected_port_is_reported_as_a_plain_drop(monkeypatch):
    rejected, dropped = range(1000, 1040), range(2000, 2040)
    res = _run(monkeypatch, rejected, dropped, budget=5.0)
    for port in rejected:
        r = res[port]
        # either the reject was seen, or the silence is flagged as possibly rate-limited
        assert r["reason"] == "admin-prohibited" or r["rate_limited"] is True, r
    # the burst (6) plus the retry round and the settle rounds found more than the burst
    assert sum(1 for p in rejected if res[p]["reason"] == "admin-prohibited") > 6


def test_settle_confirms_drops_when_budget_allows(monkeypatch):
    rejected, dropped = range(1000, 1010), range(2000, 2030)
    res = _run(monkeypatch, rejected, dropped, budget=60.0)
    assert all(res[p]["reason"] == "admin-prohibited" for p in rejected)
    assert all(res[p]["reason"] == "no-response" and not res[p]["rate_limited"] for p in dropped)


def test_silence_without_any_icmp_is_not_rate_limited(monkeypatch):
    res = _run(monkeypatch, [], range(2000, 2010), budget=5.0)
    assert all(r["state"] == "filtered" and r["rate_limited"] is False for r in res.values())


def test_a_router_rejecting_for_several_addresses_spends_one_bucket(monkeypatch):
    """The router's ICMP errors to this host share one token bucket whatever address they are about:
    a round in which it answered for one address proves nothing about the silences of another."""
    clock = Clock()
    monkeypatch.setattr(scheduler.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(scheduler.time, "sleep", clock.sleep)
    addresses = ["10.0.0.%d" % i for i in range(2, 12)]
    rejected = set((a, port) for a in addresses for port in (1000, 1001, 1002))
    eng = FakeRateLimitedHost(rejected, [], clock, sender="10.0.0.1")
    opts = probe_targets.normalize_options({"rate_limit_budget": 4.0, "rate": 100000})
    probes = [scheduler.Probe({"target": a, "address": a, "family": 4, "port": port, "protocol": "tcp"}, i)
              for i, (a, port) in enumerate(sorted(rejected))]
    rtt = scheduler._RttStats(opts["timeout"])
    scheduler.run_pass(eng, probes, opts, rtt, opts["retries"])
    scheduler.settle_rate_limited(eng, probes, opts, rtt, scheduler.last_icmp_errors(probes))
    results = [p.result() for p in probes]
    assert sum(1 for r in results if r["reason"] == "admin-prohibited") < len(results)   # the bucket ran out
    for r in results:
        # every port is rejected: none may come out as a plain drop
        assert r["reason"] == "admin-prohibited" or r["rate_limited"] is True, r


def test_one_round_proves_the_drops_next_to_a_reject(monkeypatch):
    """An address that rejected one port and drops many: once its sender has a token again, one
    round re-probes every silent port and proves them silent."""
    clock = Clock()
    monkeypatch.setattr(scheduler.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(scheduler.time, "sleep", clock.sleep)
    eng = FakeRateLimitedHost([1000], range(2000, 2050), clock)
    sent = []
    real_send = eng.send

    def send(p):
        sent.append(p.port)
        real_send(p)
    eng.send = send
    opts = probe_targets.normalize_options({"rate_limit_budget": 10.0, "rate": 100000})
    probes = [scheduler.Probe({"target": "h", "address": "10.0.0.2", "family": 4, "port": port, "protocol": "tcp"}, i)
              for i, port in enumerate([1000] + list(range(2000, 2050)))]
    rtt = scheduler._RttStats(opts["timeout"])
    scheduler.run_pass(eng, probes, opts, rtt, opts["retries"])
    before = len(sent)
    scheduler.settle_rate_limited(eng, probes, opts, rtt, scheduler.last_icmp_errors(probes))
    assert len(sent) - before == 50               # one round: each silent port once
    res = dict((p.port, p.result()) for p in probes)
    assert res[1000]["reason"] == "admin-prohibited"
    assert all(res[p]["reason"] == "no-response" and not res[p]["rate_limited"] for p in range(2000, 2050))
