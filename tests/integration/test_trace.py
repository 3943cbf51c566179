"""trace against the lab: the verdict names the hop that blocks (seed 003), over ssh as users run it."""
import json
import time

import pytest

CASES = [
    # (address, port, protocol, verdict, state, blocking address, blocking is target, hop)
    ("10.200.2.10", 80, "tcp", "reached", "open", None, None, None),
    ("10.200.2.13", 8080, "tcp", "reached", "closed", None, None, None),       # loopback-only: RST
    ("10.200.2.14", 53, "udp", "reached", "closed", None, None, None),         # stopped DNS: 3/3 from target
    ("10.200.2.10", 8081, "tcp", "silent_after_hop", None, "10.200.1.1", None, 1),   # router drops
    ("10.200.2.10", 8082, "tcp", "rejected", None, "10.200.1.1", False, 1),    # router rejects (!X)
    ("10.200.2.11", 80, "tcp", "rejected", None, "10.200.2.11", True, 2),      # firewalld nft: 3/13
    ("10.200.2.12", 80, "tcp", "rejected", None, "10.200.2.12", True, 2),      # firewalld iptables: 3/3
    ("10.200.2.15", 80, "tcp", "rejected", None, "10.200.2.15", True, 2),      # iptables 3/10
    ("10.200.2.18", 80, "tcp", "silent_after_hop", None, "10.200.1.1", None, 1),     # host drop: dies after hop 1
]


@pytest.mark.parametrize("address,port,proto,verdict,state,blocker,is_target,hop", CASES)
def test_trace_from_client(lab, address, port, proto, verdict, state, blocker, is_target, hop):
    time.sleep(1.2)  # let the router's ICMP token bucket for the client refill between cases
    res = lab.module("client", "netdiag.reachability.trace",
                     {"address": address, "port": port, "protocol": proto, "max_hops": 8, "timeout": 1.5})
    assert not res.get("failed"), res
    assert res["changed"] is False
    assert res["verdict"] == verdict, res["reason"]
    assert res["state"] == state
    if blocker:
        assert res["blocking_hop"]["address"] == blocker
        assert res["blocking_hop"]["ttl"] == hop
        if is_target is not None:
            assert res["blocking_hop"]["is_target"] is is_target
    else:
        assert res["blocking_hop"] is None
    if verdict != "silent":
        assert res["hops"][0]["address"] == "10.200.1.1"  # first hop: the router


def test_trace_runs_unprivileged(lab):
    res = lab.module("client", "netdiag.reachability.trace",
                     {"address": "10.200.2.11", "port": 80, "max_hops": 4, "timeout": 1.5}, become_user="netdiag")
    assert not res.get("failed"), res
    assert res["verdict"] == "rejected" and res["blocking_hop"]["how"] == "destination-unreachable/admin-prohibited"


def test_bad_port_is_a_clear_failure(lab):
    res = lab.module("client", "netdiag.reachability.trace", {"address": "10.200.2.10", "port": 70000})
    assert res.get("failed") and "70000" in res["msg"]


@pytest.fixture
def narrow_back_link(lab):
    """The router's link to 10.200.2.0/24 at MTU 1400 for one test; restored after, also on failure."""
    route = json.loads(lab.exec("router", ["ip", "-j", "route", "get", "10.200.2.10"]).stdout)[0]
    dev = route["dev"]
    before = json.loads(lab.exec("router", ["ip", "-j", "link", "show", dev]).stdout)[0]["mtu"]
    lab.exec("router", ["ip", "link", "set", "dev", dev, "mtu", "1400"])
    try:
        yield dev
    finally:
        lab.exec("router", ["ip", "link", "set", "dev", dev, "mtu", str(before)])
        lab.exec("router", ["nft", "delete", "table", "inet", "ndtest_pmtu"], check=False)
        for host in ("client", "router"):
            lab.exec(host, ["ip", "route", "flush", "cache"], check=False)


def test_path_mtu_reported_by_the_router_and_confirmed_by_the_target(lab, narrow_back_link):
    res = lab.module("client", "netdiag.reachability.trace",
                     {"address": "10.200.2.10", "port": 80, "max_hops": 4, "timeout": 1.0, "mtu": True},
                     become_user="netdiag")
    assert not res.get("failed"), res
    pm = res["path_mtu"]
    assert pm["local_mtu"] == 1500
    assert pm["mtu"] == 1400 and pm["verdict"] == "confirmed", pm["reason"]
    assert pm["reported_by"] == [{"address": "10.200.1.1", "mtu": 1400}]
    assert res["verdict"] == "reached"          # the trace itself is unchanged


def test_path_mtu_black_hole_is_named_and_bounded(lab, narrow_back_link):
    # the router stops sending "fragmentation needed": big packets now vanish silently
    lab.exec("router", ["nft", "add table inet ndtest_pmtu; add chain inet ndtest_pmtu out "
                        "{ type filter hook output priority 0; }; add rule inet ndtest_pmtu out "
                        "icmp type destination-unreachable icmp code frag-needed drop"])
    lab.exec("client", ["ip", "route", "flush", "cache"])
    res = lab.module("client", "netdiag.reachability.trace",
                     {"address": "10.200.2.10", "port": 80, "max_hops": 4, "timeout": 1.0, "mtu": True})
    pm = res["path_mtu"]
    assert pm["verdict"] == "black_hole", pm
    assert pm["reported_by"] == []
    # bounded: the largest size that got through is at most the real MTU and close to it
    assert 1380 <= pm["mtu"] <= 1400, pm["reason"]
    assert "black hole" in pm["reason"]


def test_path_mtu_without_a_narrow_link_is_the_interface_mtu(lab):
    res = lab.module("client", "netdiag.reachability.trace",
                     {"address": "10.200.2.14", "port": 53, "protocol": "udp", "max_hops": 4, "timeout": 1.0, "mtu": True})
    pm = res["path_mtu"]
    assert (pm["mtu"], pm["verdict"], pm["udp_port"]) == (1500, "confirmed", 53), pm


def test_every_case_in_one_call_gets_the_verdict_it_gets_alone(lab):
    """All the cases from one source in one call (what the diagnose role does): the same verdicts,
    blocking hops and states as one trace per case, although the router sees all of them at once."""
    time.sleep(2)  # the router's ICMP tokens for the client
    targets = [{"address": a, "port": p, "protocol": proto} for a, p, proto, *_rest in CASES]
    res = lab.module("client", "netdiag.reachability.trace", {"targets": targets, "max_hops": 8, "timeout": 1.5})
    assert not res.get("failed"), res
    assert res["changed"] is False
    assert [(r["address"], r["port"], r["protocol"]) for r in res["results"]] == [c[:3] for c in CASES]
    for (address, port, proto, verdict, state, blocker, is_target, hop), r in zip(CASES, res["results"]):
        assert r["target"] == address
        assert (r["verdict"], r["state"]) == (verdict, state), r["reason"]
        if blocker:
            assert (r["blocking_hop"]["address"], r["blocking_hop"]["ttl"]) == (blocker, hop), r["reason"]
        assert not any(h.get("rate_limited") for h in r["hops"]), r["hops"]
