"""The scenario generator (tests/lab/scenarios.py) builds valid labs with a truth for every flow."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
import netlab  # noqa: E402
import scenarios  # noqa: E402


@pytest.mark.parametrize("seed", range(1, 41))
def test_every_generated_lab_is_valid_and_every_flow_has_a_truth(seed):
    topo, flows, scs = scenarios.generate(seed, 30)
    netlab.validate(dict(topo, path="generated"))
    assert len(flows) == len(scs) == 30
    ports = [(s.address, s.port, s.proto) for s in scs]
    assert len(set(ports)) == len(ports)
    fwd = [h for h in topo["hosts"] if (h.get("firewall") or {}).get("kind") == "firewalld"]
    assert len(fwd) <= scenarios.MAX_FIREWALLD
    for s in scs:
        assert s.expect and s.expect["cause"] in scenarios.CAUSES, s.to_dict()
        if s.expect["cause"] not in ("ok", "unknown", "host_down"):
            assert s.expect.get("host") or s.expect.get("address") or s.expect.get("unmanaged"), s.to_dict()
        for f in s.faults:
            assert f in scenarios.FAULTS


def test_the_same_seed_gives_the_same_scenarios_and_another_seed_others():
    a = [s.to_dict() for s in scenarios.generate(5, 20)[2]]
    assert a == [s.to_dict() for s in scenarios.generate(5, 20)[2]]
    assert a != [s.to_dict() for s in scenarios.generate(6, 20)[2]]


def test_the_first_blocking_layer_decides():
    topo, flows, scs = scenarios.generate(1, 200, router_managed=True)
    for s in scs:
        layered = [f for f in s.faults if scenarios.FAULTS[f] != "special"]
        if not layered:
            continue
        first = layered[0]
        kind = scenarios.FAULTS[first]
        if kind == "egress":
            assert s.expect["cause"] == "source_firewall"
        elif kind == "path":
            assert s.expect["cause"] == "path_block" and s.expect["host"] == "router"
        elif kind == "dest_fw" and first not in scenarios.NON_BLOCKING_FW:
            assert s.expect["cause"] == "host_firewall" and s.expect["host"] == s.dest


def test_the_judge_calls_a_wrong_host_wrong_and_an_allowed_unknown_allowed():
    sc = {"id": "s01", "faults": ["nft_drop"], "source": "client", "address": "10.200.2.21", "port": 7001,
          "protocol": "tcp", "expect": {"cause": "host_firewall", "host": "s01", "marker": "scn-s01"},
          "unknown_ok": False, "forbid": []}
    finding = {"source": "client", "address": "10.200.2.21", "port": 7001, "protocol": "tcp",
               "cause": "host_firewall", "culprit": {"host": "s01", "text": 'tcp dport 7001 drop comment "scn-s01"'}}
    assert scenarios.judge({"flows": [finding]}, [sc])[0][1] == "right"
    assert scenarios.judge({"flows": [dict(finding, culprit={"host": "router", "text": "scn-s01"})]}, [sc])[0][1] == "wrong"
    assert scenarios.judge({"flows": [dict(finding, cause="unknown", culprit={})]}, [sc])[0][1] == "unknown"
    assert scenarios.judge({"flows": [dict(finding, cause="unknown", culprit={})]},
                           [dict(sc, unknown_ok=True)])[0][1] == "unknown_ok"
    assert scenarios.judge({"flows": []}, [sc])[0][1] == "wrong"


def test_strict_rp_filter_is_built_so_only_the_kernel_can_decide_it():
    found = []
    for seed in range(1, 80):
        topo, _flows, scs = scenarios.generate(seed, 30)
        hosts = {h["name"]: h for h in topo["hosts"]}
        found += [(s, hosts[s.dest]) for s in scs if s.faults == ["rp_filter_strict"]]
    assert found, "the catalogue never drew rp_filter_strict"
    for s, host in found:
        assert host["sysctls"] == {"net.ipv4.conf.all.rp_filter": 1}
        assert host["routes"] == ["%s/32 dev lo" % s.source_address]
        assert s.expect == {"cause": "no_route", "host": s.dest}
        # unknown is honest without the kernel trace, and wrong with it (run() clears unknown_ok)
        assert s.unknown_ok and s.kernel_decides
