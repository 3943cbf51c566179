# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probes to addresses on the source's own link whose ARP went unanswered: sent again once (a lost
ARP exchange on a busy link is not a missing host), and still unanswered, named as the local drop the
kernel made (EHOSTUNREACH, the neighbour entry FAILED) instead of silence."""

from ansible_collections.netdiag.reachability.plugins.module_utils.probe import neighbours
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import run as probe_run
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import scheduler
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import targets as probe_targets
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.evidence import observed

from ...helpers import fixture

# `ip -j neigh show` in a lab host's namespace after probing an absent address on its link (10.200.2.250),
# with the router resolved and a second address still being asked for
with open(fixture("probe", "ip_neigh_failed.json")) as _fh:
    IP_NEIGH = _fh.read()


def test_the_table_as_ip_gives_it():
    table = neighbours.parse_ip_neigh(IP_NEIGH)
    assert table["10.200.2.250"]["state"] == "FAILED" and table["10.200.2.250"]["dev"] == "eth0"
    assert neighbours.unresolved(table, "10.200.2.250")
    assert not neighbours.unresolved(table, "10.200.2.1")          # resolved
    assert not neighbours.unresolved(table, "10.200.9.9")          # no entry: off-link, nothing concluded
    assert neighbours.parse_ip_neigh("not json") == {} and neighbours.parse_ip_neigh('{"dst": 1}') == {}


class Clock(object):
    now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, s):
        self.now += s


class Link(object):
    """An engine double for one link: ``lossy`` addresses lose their first ARP exchange and answer the
    second time; ``absent`` ones never answer.  The neighbour table follows."""

    name = "fake"
    max_parallel = 1000

    def __init__(self, clock, lossy, absent):
        self.clock, self.lossy, self.absent = clock, set(lossy), set(absent)
        self.replies, self.sends, self.asked = [], [], {}
        self.selector = self

    def select(self, timeout):
        self.clock.now += timeout
        out, self.replies = self.replies, []
        return [(r, None) for r in out]

    def send(self, p):
        p.engine = "fake"
        self.sends.append(p.address)
        self.asked[p.address] = self.asked.get(p.address, 0) + 1
        if p.address in self.lossy and self.asked[p.address] > 1 + 1:   # the first pass (and its retry) lost
            self.replies.append((p, {"kind": "syn-ack"}))

    def receive(self, key):
        return [key]

    def finish(self, p):
        pass

    def local_error(self, p, exc):
        return None

    def table(self):
        out = {}
        for a in self.lossy | self.absent:
            resolved = a in self.lossy and self.asked.get(a, 0) > 2
            out[a] = {"state": "REACHABLE" if resolved else "FAILED", "dev": "eth0"}
        return out


def _probe(monkeypatch, lossy, absent):
    clock = Clock()
    monkeypatch.setattr(scheduler.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(scheduler.time, "sleep", clock.sleep)
    monkeypatch.setattr(probe_run.time, "monotonic", clock.monotonic)
    link = Link(clock, lossy, absent)
    opts = probe_targets.normalize_options({"rate": 100000})
    probes = [scheduler.Probe({"target": a, "address": a, "family": 4, "port": 80, "protocol": "tcp"}, i)
              for i, a in enumerate(sorted(set(lossy) | set(absent)))]
    rtt = scheduler._RttStats(opts["timeout"])
    scheduler.run_pass(link, probes, opts, rtt, opts["retries"])
    notes = probe_run.recheck_unresolved(link, probes, opts, rtt, read=link.table, sleep=clock.sleep)
    return dict((p.address, p.result()) for p in probes), notes, link


def test_a_lost_arp_exchange_is_asked_again_and_an_absent_host_is_named(monkeypatch):
    res, notes, link = _probe(monkeypatch, lossy=["10.200.2.20"], absent=["10.200.2.250"])
    assert res["10.200.2.20"]["state"] == "open"                  # the second time it answered
    absent = res["10.200.2.250"]
    assert absent["state"] == "unreachable" and absent["reason"] == "host-unreach"
    assert absent["reply"]["sender"] == "local" and absent["reply"]["local_errno"] == "EHOSTUNREACH"
    assert absent["reply"]["neighbour"] == "FAILED" and absent["reply"]["neighbour_dev"] == "eth0"
    assert any("10.200.2.20" in n and "second time" in n for n in notes)
    assert any("10.200.2.250" in n for n in notes)
    # what the explainer sees of it
    obs = observed(absent, "10.200.2.250")
    assert obs["sender"] == "local" and obs["neighbour"] == "FAILED"


def test_nothing_is_sent_again_when_every_silent_address_resolved(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(scheduler.time, "monotonic", clock.monotonic)
    link = Link(clock, [], [])
    probes = [scheduler.Probe({"target": "h", "address": "10.200.9.9", "family": 4, "port": 80, "protocol": "tcp"}, 0)]
    opts = probe_targets.normalize_options({})
    notes = probe_run.recheck_unresolved(link, probes, opts, scheduler._RttStats(1.0), read=lambda: {})
    assert notes == [] and link.sends == [] and probes[0].reply is None    # off-link silence stays silence
    assert probe_run.recheck_unresolved(link, probes, opts, scheduler._RttStats(1.0), read=lambda: None) == []


def test_the_kernels_own_host_unreachable_for_an_on_link_address_is_the_local_drop(monkeypatch):
    """The raw engine hears the host-unreachable this host's kernel sends itself (from its own address)
    when ARP fails: for an address on its own link that is the local drop, named by the entry."""
    clock = Clock()
    monkeypatch.setattr(scheduler.time, "monotonic", clock.monotonic)
    link = Link(clock, [], ["10.200.2.250"])
    p = scheduler.Probe({"target": "x", "address": "10.200.2.250", "family": 4, "port": 80, "protocol": "tcp"}, 0)
    p.attempts, p.first_sent = 2, clock.now
    p.record({"kind": "icmp", "icmp_type": 3, "icmp_code": 1, "sender": "10.200.2.100", "ttl": 64}, clock.now)
    opts = probe_targets.normalize_options({})
    probe_run.recheck_unresolved(link, [p], opts, scheduler._RttStats(1.0), read=link.table, sleep=clock.sleep)
    r = p.result()
    assert link.sends == []                                    # it answered: nothing is sent again
    assert r["reply"]["sender"] == "local" and r["reply"]["neighbour"] == "FAILED"
    assert r["reply"]["local_errno"] == "EHOSTUNREACH" and r["reply"]["sender_is_target"] is False


def test_the_output_discards_of_the_host_as_proc_counts_them(tmp_path):
    assert probe_run.output_discards(fixture("probe", "proc-net-discards")) == 295
    assert probe_run.output_discards(str(tmp_path)) is None          # no /proc: nothing said
    (tmp_path / "snmp").write_text("Ip: Forwarding OutDiscards\nIp: 1 x\n")
    assert probe_run.output_discards(str(tmp_path)) is None          # unreadable: nothing said


def test_silent_results_of_a_probe_that_discarded_its_own_packets_say_so():
    results = [{"reply": None, "state": "filtered"}, {"reply": {"kind": "syn-ack"}, "state": "open"}]
    note = probe_run._mark_discards(results, 10, 305)
    assert results[0]["local_discards"] == 295 and "local_discards" not in results[1]
    assert "295" in note and "neighbor table overflow" in note
    assert probe_run._mark_discards([{"reply": None}], 10, 10) is None
    assert probe_run._mark_discards([{"reply": None}], None, 10) is None
