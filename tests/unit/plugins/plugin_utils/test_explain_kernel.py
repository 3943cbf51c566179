"""The kernel as witness in the explainer (rank 2: below the wire, above the ruleset), on the seed
lab's captured facts with a kernel trace added the way the kernel_trace module returns it."""
import copy
import json

import pytest

from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.run import explain

from ..helpers import fixture


@pytest.fixture(scope="module")
def facts():
    with open(fixture("explain", "seeds-facts.json")) as fh:
        return json.load(fh)


def _flow(facts, address, port, **changes):
    f = copy.deepcopy(next(f for f in facts["flows"] if f["address"] == address and f["port"] == port))
    f.update(changes)
    return f


def _silent(address, port):
    return {"address": address, "engine": "raw", "family": "ipv4", "port": port, "protocol": "tcp",
            "rate_limited": False, "reason": "no-response", "reply": None, "retries": 1, "rtt_ms": None,
            "state": "filtered", "target": address}


def _traced(hosts, host, flow, records, **extra):
    hosts[host]["kernel_trace"] = dict({
        "packets": [{"src": flow["source_address"], "dst": flow["address"], "protocol": flow["protocol"],
                     "port": flow["port"]}],
        "traces": [dict({"src": flow["source_address"], "dst": flow["address"], "protocol": flow["protocol"],
                         "port": flow["port"], "iif": "eth0", "events": []}, **r) for r in records],
        "window_expired": False, "legacy_rules": False}, **extra)


def _drop(family, table, chain, handle, text, kind="rule", position=None):
    return {"verdict": "drop", "reached": None, "decided_by": {
        "family": family, "table": table, "chain": chain, "kind": kind, "handle": handle, "text": text,
        "position": position}}


def _one(hosts, flow):
    return explain([flow], hosts)["flows"][0]


def test_the_kernel_confirms_the_evaluators_rule_and_decides(facts):
    hosts = copy.deepcopy(facts["hosts"])
    flow = _flow(facts, "10.200.2.18", 80)
    _traced(hosts, "nft-drop", flow, [_drop("inet", "filter", "input", 2, "tcp dport 80 drop comment ...")])
    f = _one(hosts, flow)
    assert (f["cause"], f["decided_by"]) == ("host_firewall", "kernel")
    assert f["culprit"]["handle"] == 2 and f["culprit"]["table"] == "filter"
    assert f["conflicts"] == []
    assert f["evidence"]["kernel"][0]["host"] == "nft-drop" and f["evidence"]["kernel"][0]["verdict"] == "drop"
    assert "nft insert rule inet filter input" in json.dumps(f["fix"])


def test_the_kernel_outranks_the_evaluator_and_says_so(facts):
    # the evaluator says the healthy host accepts 80; its kernel shows a rule loaded since the gather dropping it
    hosts = copy.deepcopy(facts["hosts"])
    flow = _flow(facts, "10.200.2.10", 80, probe=_silent("10.200.2.10", 80), trace=None)
    _traced(hosts, "healthy", flow, [_drop("inet", "late", "input", 9, "tcp dport 80 drop")])
    f = _one(hosts, flow)
    assert (f["cause"], f["decided_by"]) == ("host_firewall", "kernel")
    assert f["culprit"]["table"] == "late" and f["culprit"]["handle"] == 9
    assert any("the kernel is followed" in c and "inet late input handle 9" in c for c in f["conflicts"]), f["conflicts"]


def test_a_router_the_kernel_caught_dropping_is_the_path_block(facts):
    hosts = copy.deepcopy(facts["hosts"])
    flow = _flow(facts, "10.200.2.10", 8081)
    _traced(hosts, "router", flow, [_drop("inet", "lab", "forward", 2, "ip daddr 10.200.2.10 tcp dport 8081 drop")])
    _traced(hosts, "healthy", flow, [])
    f = _one(hosts, flow)
    assert (f["cause"], f["decided_by"]) == ("path_block", "kernel")
    assert f["culprit"]["host"] == "router" and f["culprit"]["rule"]["handle"] == 2
    assert f["conflicts"] == []


def test_the_wire_outranks_the_kernel(facts):
    # 8082: the router's ICMP 3/13 is on the wire; a kernel trace on the destination cannot move the blame
    hosts = copy.deepcopy(facts["hosts"])
    flow = _flow(facts, "10.200.2.10", 8082)
    _traced(hosts, "healthy", flow, [_drop("inet", "other", "input", 5, "tcp dport 8082 drop")])
    f = _one(hosts, flow)
    assert (f["cause"], f["decided_by"]) == ("path_block", "wire")
    assert any("the wire is followed" in c for c in f["conflicts"])


def test_a_packet_the_destination_accepted_contradicts_a_ruleset_drop(facts):
    hosts = copy.deepcopy(facts["hosts"])
    flow = _flow(facts, "10.200.2.18", 80)
    _traced(hosts, "nft-drop", flow, [{"verdict": "accept", "reached": "input", "decided_by": None}])
    f = _one(hosts, flow)
    assert (f["cause"], f["decided_by"]) == ("unknown", "kernel")
    assert any("input rules let the packet through" in c for c in f["conflicts"])
    assert f["candidates"] and f["fix"] is None


def test_a_packet_that_never_arrived_is_not_the_destinations_rule(facts):
    hosts = copy.deepcopy(facts["hosts"])
    flow = _flow(facts, "10.200.2.18", 80)
    # nothing shows the source sent again (its second probe may have failed): not seeing it proves nothing
    _traced(hosts, "nft-drop", flow, [])
    assert _one(hosts, flow)["cause"] == "host_firewall"
    # the router forwarded it while the trace ran, and the destination never saw it
    _traced(hosts, "router", flow, [{"verdict": "accept", "reached": "forward", "decided_by": None}])
    hosts["client"]["routes"] = [
        {"family": "ipv4", "dst": "0.0.0.0/0", "type": "unicast", "gateway": "10.200.1.1", "dev": "eth0", "metric": 0}]
    f = _one(hosts, flow)
    assert (f["cause"], f["decided_by"]) == ("unknown", "kernel")
    assert any("did not see the packet" in c for c in f["conflicts"])
    # once the window had expired, not seeing it proves nothing
    _traced(hosts, "nft-drop", flow, [], window_expired=True)
    assert _one(hosts, flow)["cause"] == "host_firewall"


def test_discarded_by_the_routing_decision_names_rp_filter_from_the_hosts_facts(facts):
    hosts = copy.deepcopy(facts["hosts"])
    flow = _flow(facts, "10.200.2.10", 80, probe=_silent("10.200.2.10", 80), trace=None)
    hosts["healthy"]["sysctls"] = dict(hosts["healthy"].get("sysctls") or {}, **{"net.ipv4.conf.all.rp_filter": 1})
    hosts["healthy"]["routes"] = [
        {"family": "ipv4", "dst": "10.200.2.0/24", "type": "unicast", "dev": "eth0", "metric": 0},
        {"family": "ipv4", "dst": "10.200.1.0/24", "type": "unicast", "gateway": "10.200.9.1", "dev": "eth9", "metric": 0}]
    _traced(hosts, "healthy", flow, [{"verdict": "accept", "reached": None, "decided_by": None}])
    f = _one(hosts, flow)
    assert (f["cause"], f["decided_by"]) == ("no_route", "kernel"), f["culprit"]
    assert "rp_filter" in f["culprit"]["text"] and "eth9" in f["culprit"]["text"]
    # with loose reverse-path filtering and a route back, nothing in the facts decides: unknown, what to run
    hosts["healthy"]["sysctls"]["net.ipv4.conf.all.rp_filter"] = 2
    f = _one(hosts, flow)
    assert (f["cause"], f["decided_by"]) == ("unknown", "kernel")
    assert "ip route get" in f["candidates"][0]["decide"]


def test_a_router_that_does_not_forward_is_named(facts):
    hosts = copy.deepcopy(facts["hosts"])
    flow = _flow(facts, "10.200.2.10", 8081)
    hosts["router"]["sysctls"] = dict(hosts["router"].get("sysctls") or {}, **{"net.ipv4.ip_forward": 0})
    _traced(hosts, "router", flow, [{"verdict": "accept", "reached": None, "decided_by": None}])
    f = _one(hosts, flow)
    assert (f["cause"], f["decided_by"]) == ("path_block", "kernel")
    assert "does not forward" in f["culprit"]["text"] and "ip_forward" in f["fix"]["summary"]


def test_an_iptables_rule_is_found_by_its_position_in_the_chain(facts):
    # ufw's rules are read with iptables-save (no handles); the kernel names the rule by handle and
    # kernel_trace adds its position; ufw-skip-to-policy-input's only rule drops
    hosts = copy.deepcopy(facts["hosts"])
    flow = _flow(facts, "10.200.2.17", 80)
    _traced(hosts, "ufw", flow, [_drop("ip", "filter", "INPUT", None, "policy drop", kind="policy")])
    f = _one(hosts, flow)
    assert (f["cause"], f["decided_by"]) == ("host_firewall", "kernel")
    assert f["conflicts"] == [], f["conflicts"]
    assert "ufw default incoming policy" in f["culprit"]["text"]
    _traced(hosts, "ufw", flow, [_drop("ip", "filter", "ufw-skip-to-policy-input", 77, "counter drop", position=1)])
    f = _one(hosts, flow)
    assert f["culprit"]["line"] == 96 and f["culprit"]["chain"] == "ufw-skip-to-policy-input"


def test_no_kernel_trace_changes_nothing(facts):
    flows = [copy.deepcopy(f) for f in facts["flows"]]
    before = explain(flows, facts["hosts"])
    hosts = copy.deepcopy(facts["hosts"])
    # a trace of other packets only: no flow is touched
    hosts["healthy"]["kernel_trace"] = {"packets": [{"src": "10.9.9.9", "dst": "10.200.2.10", "protocol": "tcp",
                                                     "port": 1}], "traces": []}
    after = explain([copy.deepcopy(f) for f in facts["flows"]], hosts)
    assert before == after


def test_with_iptables_legacy_rules_only_a_kernel_drop_counts(facts):
    # ipt-legacy drops 3306 in iptables-legacy, which the trace cannot see: the packet looks accepted
    # by nothing and reaches neither hook; that proves nothing, and the ruleset's answer stands
    hosts = copy.deepcopy(facts["hosts"])
    flow = _flow(facts, "10.200.2.16", 3306)
    _traced(hosts, "ipt-legacy", flow, [{"verdict": "accept", "reached": None, "decided_by": None}], legacy_rules=True)
    f = _one(hosts, flow)
    assert (f["cause"], f["decided_by"]) == ("host_firewall", "ruleset")
    assert "--dport 3306 -j DROP" in f["culprit"]["text"]
    assert "iptables-legacy rules, which the kernel trace cannot see" in f["evidence"]["kernel"][0]["note"]
    assert f["conflicts"] == []


def test_a_wire_decided_reject_keeps_its_wording_when_the_kernel_agrees(facts):
    hosts = copy.deepcopy(facts["hosts"])
    flow = _flow(facts, "10.200.2.10", 8082)
    before = _one(copy.deepcopy(facts["hosts"]), copy.deepcopy(flow))
    _traced(hosts, "router", flow, [_drop("inet", "lab", "forward", 3, "ip daddr 10.200.2.10 tcp dport 8082 reject")])
    f = _one(hosts, flow)
    assert (f["cause"], f["decided_by"], f["culprit"], f["fix"]) == (
        before["cause"], before["decided_by"], before["culprit"], before["fix"])
    assert f["evidence"]["kernel"][0]["verdict"] == "drop" and f["conflicts"] == []


def test_an_absent_host_behind_a_traced_router_is_host_down_from_its_neighbour_table(facts):
    # 10.200.2.99: no managed host, on the router's back subnet; the router's host-unreachable was
    # rate-limited (silence), so the wire alone cannot decide
    hosts = copy.deepcopy(facts["hosts"])
    flow = dict(_flow(facts, "10.200.2.10", 8081), address="10.200.2.99", destination=None,
                probe=_silent("10.200.2.99", 8081), trace=None)
    hosts["client"]["routes"] = [
        {"family": "ipv4", "dst": "0.0.0.0/0", "type": "unicast", "gateway": "10.200.1.1", "dev": "eth0", "metric": 0}]
    assert _one(copy.deepcopy(hosts), copy.deepcopy(flow))["cause"] == "unknown"
    _traced(hosts, "router", flow, [{"verdict": "accept", "reached": "forward", "decided_by": None}],
            neighbours=[{"address": "10.200.2.99", "dev": "br-back", "state": "FAILED"}])
    f = _one(hosts, flow)
    assert (f["cause"], f["decided_by"]) == ("host_down", "kernel"), f["culprit"]
    assert f["culprit"]["host"] == "router" and "no host answered" in f["culprit"]["text"]
    # a neighbour that answers (REACHABLE) decides nothing
    hosts["router"]["kernel_trace"]["neighbours"][0]["state"] = "REACHABLE"
    assert _one(hosts, flow)["cause"] == "unknown"
