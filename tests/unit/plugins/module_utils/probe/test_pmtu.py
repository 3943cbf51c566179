"""Path MTU verdicts from probe sequences recorded on scratch namespaces (a router with a 1400-byte
link; the same with the router's 'fragmentation needed' dropped; the target's UDP port filtered)."""
import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.probe import pmtu
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError

TARGET = "10.200.211.2"


def probe(size, reply, address=None, mtu=None, itype=None, code=None):
    return {"size": size, "reply": reply, "address": address, "mtu": mtu, "icmp_type": itype, "icmp_code": code}


def test_reported_then_confirmed():
    probes = [probe(1500, "too-big", "10.200.210.1", 1400, 3, 4), probe(1400, "icmp", TARGET, None, 3, 3)]
    out = pmtu._verdict(4, TARGET, 33434, 1500, 1400, None, [{"address": "10.200.210.1", "mtu": 1400}], probes)
    assert (out["mtu"], out["verdict"]) == (1400, "confirmed")
    assert "reported by 10.200.210.1: 1400" in out["reason"] and "the destination" in out["reason"]


def test_black_hole_names_both_bounds():
    sizes = [(1500, None), (576, "icmp"), (1038, "icmp"), (1269, "icmp"), (1384, "icmp"), (1442, None),
             (1413, None), (1398, "icmp"), (1405, None)]
    probes = [probe(s, r, TARGET if r else None, None, 3 if r else None, 3 if r else None) for s, r in sizes]
    out = pmtu._verdict(4, TARGET, 33434, 1500, 1398, 1405, [], probes)
    assert (out["mtu"], out["verdict"]) == (1398, "black_hole")
    assert "between 1398 and 1405 bytes" in out["reason"]


def test_reported_but_not_confirmed_when_udp_is_filtered():
    probes = [probe(1500, "too-big", "10.200.210.1", 1400, 3, 4), probe(1400, None), probe(576, None)]
    out = pmtu._verdict(4, TARGET, 33434, 1500, None, 576, [{"address": "10.200.210.1", "mtu": 1400}], probes)
    assert (out["mtu"], out["verdict"]) == (1400, "reported")
    assert "not confirmed" in out["reason"] and "33434" in out["reason"]


def test_nothing_answers():
    out = pmtu._verdict(4, TARGET, 33434, 1500, None, 576, [], [probe(1500, None), probe(576, None)])
    assert (out["mtu"], out["verdict"]) == (None, "unknown")


def test_bad_port_names_the_value():
    with pytest.raises(InputError, match="70000"):
        pmtu.path_mtu(4, "127.0.0.1", 70000)


def test_loopback_path_is_confirmed_at_the_route_mtu():
    # a real run: nothing listens on 127.0.0.1:33434, so the kernel answers port unreachable at
    # the first size tried, the route's MTU
    out = pmtu.path_mtu(4, "127.0.0.1", timeout=0.5)
    assert out["verdict"] == "confirmed" and out["mtu"] == out["local_mtu"] >= 1500
    assert out["probes"][0]["reply"] == "icmp" and (out["probes"][0]["icmp_type"], out["probes"][0]["icmp_code"]) == (3, 3)
