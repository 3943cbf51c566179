"""Matches on the connection's original tuple (Docker's DOCKER-USER pattern: the chain sees packets
after DNAT, so its documentation matches --ctorigdst/--ctorigdstport), on captured rulesets."""
import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.iptables import parse_iptables_save
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.nftables import parse_nft_json

from ...helpers import fixture

HOST = "10.200.2.50"


def _docker():
    with open(fixture("rules", "docker", "iptables-nft-save.txt")) as fh:
        return Evaluator(parse_iptables_save(fh.read(), family="ipv4", backend="iptables-nft"))


def _pkt(src, dport, oif="docker0"):
    # after Docker's DNAT the packet is forwarded out of the bridge
    return {"family": "ipv4", "proto": "tcp", "src": src, "dst": HOST, "sport": 40000, "dport": dport, "iif": "eth0",
            "oif": oif}


def test_docker_user_drop_on_the_original_port_decides_after_dnat():
    res = _docker().evaluate(_pkt("10.200.1.10", 8080), path="input", local_addresses=[HOST])
    assert res["verdict"] == "drop", res["reason"]
    assert "--ctorigdstport 8080" in res["rule"]["text"] and res["rule"]["chain"] == "DOCKER-USER"
    assert res["nat"]["dst"] == "172.17.0.2"


def test_the_same_port_from_elsewhere_reaches_the_container():
    res = _docker().evaluate(_pkt("10.200.3.3", 8080), path="input", local_addresses=[HOST])
    assert res["verdict"] == "accept", res["reason"]


@pytest.mark.parametrize("dport,verdict", [(9090, "reject"), (9091, "drop")])  # 9091: FORWARD policy DROP
def test_original_destination_address_and_port(dport, verdict):
    # 9090 is not published (no DNAT): the packet stays for the host, so DOCKER-USER (forward) never sees it
    res = _docker().evaluate(dict(_pkt("10.200.3.3", dport), dst=HOST), path="input", local_addresses=[HOST])
    assert res["verdict"] == "accept", res["reason"]
    # a routed packet to that address (the host is a router for it): DOCKER-USER sees its original tuple
    res = _docker().evaluate(dict(_pkt("10.200.3.3", dport, oif="eth1"), dst=HOST), path="forward", local_addresses=[])
    assert res["verdict"] == verdict, res["reason"]


def test_nft_ct_original_tuple_and_direction():
    with open(fixture("rules", "docker", "nft-j-ct-original.json")) as fh:
        ev = Evaluator(parse_nft_json(fh.read()))
    hit = ev.evaluate(dict(_pkt("10.200.1.10", 8080)), path="forward")
    assert hit["verdict"] == "drop" and "docker-style" in hit["rule"]["text"], hit["rule"]
    assert ev.evaluate(dict(_pkt("10.200.1.10", 8081)), path="forward")["verdict"] == "accept"
    assert ev.evaluate(dict(_pkt("10.200.1.10", 8080), dst="10.200.2.51"), path="forward")["verdict"] == "accept"
