"""Many flows at once: explaining a fleet's flows together gives each flow the finding it gets
explained on its own (the explainer shares work between flows: rulesets compiled once, one
trial ruleset for the fixes that go to the same place, routes walked once per address)."""
import copy
import json

import pytest

from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain import verify
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.facts import HostIndex
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.run import explain

from ..helpers import fixture

PORTS = (22, 53, 80, 443, 3306, 5432, 8000, 8080, 8081, 8082, 8088, 9999)


@pytest.fixture(scope="module")
def facts():
    with open(fixture("explain", "seeds-facts.json")) as fh:
        return json.load(fh)


def with_rich_reject(hosts, port):
    """fwd-nft with a firewalld rich rule that rejects ``port`` (in the zone's deny chain, before its allow chain)."""
    hosts = copy.deepcopy(hosts)
    fw = hosts["fwd-nft"]["firewall"]
    rich = 'rule family="ipv4" port port="%d" protocol="tcp" reject type="icmp-admin-prohibited"' % port
    fw["firewalld"]["runtime"]["zones"]["public"]["rich_rules"].append(rich)
    deny = next(c for c in fw["ruleset"]["tables"][0]["chains"] if c["name"] == "filter_IN_public_deny")
    deny["rules"].append({"matches": [{"key": "dport", "negate": False, "values": [port], "requires": {"proto": ["tcp"]}}],
                          "statements": [], "verdict": {"kind": "reject", "type": "icmpx", "expr": "admin-prohibited"},
                          "origin": {"backend": "nftables", "family": "inet", "table": "firewalld", "handle": 140,
                                     "chain": "filter_IN_public_deny",
                                     "text": "tcp dport %d reject with icmpx admin-prohibited" % port}})
    return hosts


def many(facts):
    """Every seed flow again on other ports (the same answer on the wire), from two source addresses."""
    out = []
    for seed in facts["flows"]:
        for port in (seed["port"],) + PORTS:
            for source_address in ("10.200.1.10", "10.200.1.11"):
                f = copy.deepcopy(seed)
                f.update(port=port, source_address=source_address, expect="open" if port % 2 else "closed")
                f["probe"]["port"] = port
                out.append(f)
    return out


def test_flows_explained_together_get_the_findings_they_get_alone(facts, monkeypatch):
    flows = many(facts)
    hosts = with_rich_reject(facts["hosts"], 9999)
    together = explain(copy.deepcopy(flows), hosts)
    assert len(together["flows"]) == len(flows)
    # alone, each fix is tried with its own rule in its own copy of the ruleset (no shared trial at all)
    monkeypatch.setattr(verify, "_shared_trial", lambda *args: None)
    checked = {}
    for i, f in enumerate(flows):
        alone = explain([copy.deepcopy(f)], hosts)["flows"][0]
        assert together["flows"][i] == alone, (f["address"], f["port"], f["source_address"])
        fix = alone.get("fix") or {}
        if fix.get("checked"):
            checked[fix["checked"]["passes"]] = checked.get(fix["checked"]["passes"], 0) + 1
    # the fixes were tried on the facts, with both outcomes among them
    assert checked.get(True, 0) > 50 and checked.get(False, 0) > 0, checked
    assert together["summary"] == {**together["summary"], "flows": len(flows)}


def _gateway():
    """A router that maps its own 10.0.1.1:8080 to 10.0.2.5:80 and forwards nothing it is not told to."""
    def rule(matches, verdict, handle, text):
        return {"matches": matches, "statements": [], "verdict": verdict,
                "origin": {"backend": "nftables", "family": "inet", "table": "t", "chain": "x", "handle": handle, "text": text}}
    tcp = {"family": "ipv4", "proto": ["tcp"]}
    ruleset = {"model": 1, "warnings": [], "tables": [{"backend": "nftables", "family": "inet", "name": "t", "sets": {}, "chains": [
        {"name": "prerouting", "type": "nat", "hook": "prerouting", "priority": -100, "policy": "accept", "rules": [
            rule([{"key": "dst", "negate": False, "values": ["10.0.1.1"]},
                  {"key": "dport", "negate": False, "values": [8080], "requires": tcp}],
                 {"kind": "dnat", "addr": "10.0.2.5", "port": 80}, 2, "ip daddr 10.0.1.1 tcp dport 8080 dnat to 10.0.2.5:80")]},
        {"name": "forward", "type": "filter", "hook": "forward", "priority": 0, "policy": "drop", "rules": [
            rule([{"key": "dport", "negate": False, "values": [22], "requires": tcp}], {"kind": "accept"}, 3, "tcp dport 22 accept")]},
    ]}]}
    return {"addresses": ["10.0.1.1", "10.0.2.1"],
            "interfaces": [{"name": "front", "address": "10.0.1.1", "prefix": 24}, {"name": "back", "address": "10.0.2.1", "prefix": 24}],
            "firewall": {"ruleset": ruleset}}


def test_a_fix_tried_with_other_flows_says_what_it_says_alone_when_a_dnat_rewrites_the_packet():
    hosts = {"gw": _gateway()}
    mapped = {"source": "client", "source_address": "10.0.1.9", "address": "10.0.1.1", "port": 8080, "protocol": "tcp"}
    direct = dict(mapped, address="10.0.2.5", port=80)
    fix = {"open_ports": {"host": "gw", "backend": "nftables", "family": "inet", "table": "t", "chain": "forward",
                          "before_handle": None, "ports": ["8080/tcp"]}}
    alone = verify.check(HostIndex(hosts, [mapped]), "gw", fix, mapped, "forward")
    together = verify.check(HostIndex(hosts, [mapped, direct]), "gw", fix, mapped, "forward")
    # the rule accepts 10.0.1.1:8080, but after the DNAT the packet is 10.0.2.5:80: still dropped
    assert alone["passes"] is False and together == alone
    assert verify.check(HostIndex(hosts, [mapped, direct]), "gw", dict(fix), direct, "forward")["passes"] is True
