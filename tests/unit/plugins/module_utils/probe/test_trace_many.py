"""Many traces at once (trace_many) over a simulated path whose router rate-limits its ICMP errors
the way Linux does (a token bucket per destination): every flow gets the result it would get
alone, and the second probes are sent only when a router may have run out."""
import time

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.probe import scheduler
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import trace as T

ROUTER = "10.200.1.1"


@pytest.fixture(autouse=True)
def literal_addresses(monkeypatch):
    """The simulated addresses are literals: nothing to look up (and the unit tests must not)."""
    real = T._resolve

    def resolve(address):
        if address.endswith(".invalid"):
            return real(address)
        return 4, address
    monkeypatch.setattr(T, "_resolve", resolve)


INTERVAL = 0.05   # the simulated router earns a token every 50 ms (Linux: 1 s)


class Router(object):
    """Hop 1 of every path: answers time-exceeded to TTL 1, rejects or drops what its forward
    rules say at TTL 2+, while it has tokens (burst 6, one per INTERVAL)."""

    def __init__(self, rules, burst=6):
        self.rules = rules          # (address, port) -> "drop" | "reject" | "open" | "host-drop"
        self.tokens = float(burst)
        self.burst = burst
        self.stamp = time.monotonic()
        self.sent = 0
        self.probes = 0

    def _token(self):
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) / INTERVAL)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.sent += 1
            return True
        return False

    def answer(self, hop):
        flow = hop.flow
        rule = self.rules[(flow.addr, flow.port)]
        if hop.ttl == 1:
            if self._token():
                return {"reply": "time-exceeded", "address": ROUTER, "icmp_type": 11, "icmp_code": 0,
                        "icmp_name": "time-exceeded/ttl-zero-during-transit", "rtt_ms": 0.1}
            return None
        if rule == "reject":
            if self._token():
                return {"reply": "icmp", "address": ROUTER, "icmp_type": 3, "icmp_code": 13,
                        "icmp_name": "destination-unreachable/admin-prohibited", "rtt_ms": 0.1}
            return None
        if rule == "open":
            return {"reply": "syn-ack", "rtt_ms": 0.2}
        return None  # dropped by the router or by the host

    def exchange(self, hops, opts):
        for hop in hops:
            self.probes += 1
            hop.sent = time.monotonic()
            hop.result = self.answer(hop) or {"reply": None}
            hop.done = True


def targets(rules):
    return [{"address": a, "port": p} for a, p in rules]


def run(monkeypatch, rules, burst=6, **kw):
    router = Router(rules, burst=burst)
    monkeypatch.setattr(T, "_exchange", router.exchange)
    out = T.trace_many(targets(rules), max_hops=8, timeout=0.1, rate_limit_interval=INTERVAL, **kw)
    return out, router


def alone(monkeypatch, address, port, rule):
    router = Router({(address, port): rule}, burst=1000)
    monkeypatch.setattr(T, "_exchange", router.exchange)
    return T.trace_many([{"address": address, "port": port}], max_hops=8, timeout=0.1)["results"][0]


RULES = dict([(("10.200.2.%d" % i, 8081), "drop") for i in range(10, 20)]
             + [(("10.200.2.%d" % i, 8082), "reject") for i in range(10, 14)]
             + [(("10.200.3.%d" % i, 80), "open") for i in range(1, 4)])


def test_every_flow_gets_the_result_it_gets_alone_although_the_router_runs_out(monkeypatch):
    out, router = run(monkeypatch, RULES)
    assert out["reprobes"] > 0                     # 17 paths through one router with a burst of 6
    for (address, port), rule in RULES.items():
        got = next(r for r in out["results"] if (r["address"], r["port"]) == (address, port))
        ref = alone(monkeypatch, address, port, rule)
        assert (got["verdict"], got["blocking_hop"], got["state"]) == (ref["verdict"], ref["blocking_hop"], ref["state"])
        assert [(h["ttl"], h["reply"], h["address"]) for h in got["hops"]] == \
               [(h["ttl"], h["reply"], h["address"]) for h in ref["hops"]]
        assert not any(h.get("rate_limited") for h in got["hops"])
    verdicts = set((r["port"], r["verdict"]) for r in out["results"])
    assert verdicts == {(8081, "silent_after_hop"), (8082, "rejected"), (80, "reached")}


def test_few_flows_within_the_burst_are_not_probed_twice(monkeypatch):
    rules = {("10.200.2.10", 8081): "drop", ("10.200.2.11", 8081): "drop", ("10.200.3.1", 80): "open"}
    out, router = run(monkeypatch, rules)
    assert out["reprobes"] == 0
    # TTL 1-7 for each silent path (a wave of 3, then the 4 TTLs that end its silent run of 6), one
    # wave for the open one: nothing more
    assert router.probes == 7 * 2 + 3


def test_a_silent_tail_costs_one_wave_after_the_last_answer(monkeypatch):
    """The waits are what a trace costs: a path silent after hop 1 takes two waves (two timeouts),
    not one per three TTLs, and stops where max_silent_hops says."""
    rules = {("10.200.2.10", 8081): "drop"}
    router = Router(rules)
    waves = []

    def exchange(hops, opts):
        waves.append([h.ttl for h in hops])
        router.exchange(hops, opts)
    monkeypatch.setattr(T, "_exchange", exchange)
    res = T.trace_many(targets(rules), max_hops=16, timeout=0.1, max_silent_hops=6)["results"][0]
    assert waves == [[1, 2, 3], [4, 5, 6, 7]]
    assert res["verdict"] == "silent_after_hop" and [h["ttl"] for h in res["hops"]] == list(range(1, 8))


def test_a_router_that_never_earns_a_token_again_leaves_the_doubt_marked(monkeypatch):
    router = Router(RULES)
    router.answer_real = router.answer

    def stingy(hop):
        res = router.answer_real(hop)
        router.tokens = min(router.tokens, 0.0) if router.sent >= 6 else router.tokens
        return res
    router.answer = stingy
    monkeypatch.setattr(T, "_exchange", router.exchange)
    out = T.trace_many(targets(RULES), max_hops=8, timeout=0.1, rate_limit_interval=INTERVAL, rate_limit_budget=0.3)
    marked = [r for r in out["results"] if any(h.get("rate_limited") for h in r["hops"])]
    assert marked                                   # not silently called a drop
    assert all(h["reply"] is None for r in marked for h in r["hops"] if h.get("rate_limited"))


def test_duplicates_are_traced_once_and_unresolvable_names_are_named(monkeypatch):
    rules = {("10.200.2.10", 8081): "drop"}
    router = Router(rules)
    monkeypatch.setattr(T, "_exchange", router.exchange)
    out = T.trace_many([{"address": "10.200.2.10", "port": 8081}, {"address": "no-such-host.invalid", "port": 80},
                        {"address": "10.200.2.10", "port": 8081}], max_hops=8, timeout=0.1)
    first, bad, again = out["results"]
    assert first == again and first["verdict"] == "silent_after_hop"
    assert bad["verdict"] is None and "no-such-host.invalid" in bad["error"]
    assert router.probes == 7


@pytest.mark.parametrize("targets_,needle", [([], "non-empty"), ([{"port": 80}], "address"),
                                             ([{"address": "10.0.0.1", "port": 80, "ttl": 3}], "ttl"),
                                             ([{"address": "10.0.0.1"}], "needs a port")])
def test_bad_targets(targets_, needle):
    with pytest.raises(T.InputError, match=needle):
        T.trace_many(targets_)


def test_budget_counts_a_burst_and_refills():
    b = scheduler.IcmpBudget(1.0)
    assert [b.receive("r", 10.0) for dummy in range(6)] == [False, False, False, False, True, True]
    assert b.level("r", 12.0) == pytest.approx(2.0)
    assert b.wait({"r"}, 10.5) == pytest.approx(0.5) and b.wait({"other"}, 10.5) == 0.0


def test_an_icmp_target_this_host_cannot_probe_is_named_and_the_others_are_traced(monkeypatch):
    rules = {("10.200.2.10", 8081): "drop"}
    router = Router(rules)
    monkeypatch.setattr(T, "_exchange", router.exchange)
    monkeypatch.setattr(T, "_icmp_backend", lambda family: (False, "an ICMP trace needs a ping socket (denied)"))
    out = T.trace_many([{"address": "10.200.2.10", "port": 8081}, {"address": "10.200.2.11", "protocol": "icmp"}],
                       max_hops=8, timeout=0.1)
    tcp, icmp = out["results"]
    assert tcp["verdict"] == "silent_after_hop"
    assert icmp["verdict"] is None and "ping socket" in icmp["error"] and icmp["port"] is None
    with pytest.raises(T.BackendUnavailable, match="ping socket"):
        T.trace("10.200.2.11", protocol="icmp", max_hops=2, timeout=0.1)
