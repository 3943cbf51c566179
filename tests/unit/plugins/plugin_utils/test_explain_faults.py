"""Faults between the stages (issue #17): a source whose probe module died, a host whose firewall read
failed mid-way (nft erroring), a host that was never read. Each flow still gets an answer or an
`unknown` that names what failed - never a silence that was not seen, never the wrong advice."""
import json

from ansible_collections.netdiag.reachability.plugins.filter.reachability import explain

from ..helpers import fixture

SEEDS = json.load(open(fixture("explain", "seeds-facts.json")))
PLAN = {"flows": [{"name": None, "source": "client", "destination": "web", "address": "10.200.2.10", "port": 80,
                   "protocol": "tcp", "expect": "open"}],
        "probes": {"client": [{"host": "10.200.2.10", "protocol": "tcp", "ports": [80]}]},
        "gather": ["client", "web"], "sources": ["client"]}
SILENT = {"results": [{"address": "10.200.2.10", "port": 80, "protocol": "tcp", "state": "filtered",
                       "reason": "no-response", "reply": None}]}
NFT_FAILED = {"failed": True, "msg": "firewall_info: nft -j list ruleset failed (rc 1): Error: Could not process rule"}


def _listeners():
    addresses = [{"name": "eth0", "address": "10.200.2.10", "prefix": 24}]
    return {"listeners": [], "sysctls": {}, "interface_addresses": addresses, "routes": []}


def one(hostvars):
    return explain(PLAN, hostvars)["flows"][0]


def test_a_probe_that_died_is_named_not_taken_for_silence():
    flow = one({"client": {"ansible_host": "10.200.1.10",
                           "reachability_probe": {"failed": True, "msg": "MODULE FAILURE: Killed", "rc": 137}},
                "web": {"ansible_host": "10.200.2.10", "reachability_listeners": _listeners(),
                        "reachability_firewall": {"skipped": True}}})
    assert flow["cause"] == "unknown" and flow["reason"] == "probe-failed"
    assert flow["culprit"]["text"] == "the probe from client failed: MODULE FAILURE: Killed"
    assert flow["candidates"][0]["host"] == "client" and "ansible client -m ansible.builtin.ping" in \
        flow["candidates"][0]["decide"]
    assert not [c for c in flow["conflicts"] if "silence" in c]


def test_without_a_probe_a_dropping_rule_still_decides_and_says_the_wire_saw_nothing():
    seeds = {f["address"]: f for f in SEEDS["flows"]}
    nft = seeds["10.200.2.18"]
    flows = [dict(nft, probe={"state": None, "reason": "probe-failed", "error": "MODULE FAILURE: Killed"}, trace=None)]
    from ansible_collections.netdiag.reachability.plugins.filter.reachability import explain_facts
    flow = explain_facts(flows, SEEDS["hosts"])["flows"][0]
    assert flow["cause"] == "host_firewall" and flow["decided_by"] == "ruleset"
    assert "tcp dport 80 drop" in json.dumps(flow["culprit"])
    assert any("the probe from client failed: MODULE FAILURE: Killed: decided by the rules of nft-drop alone" in c
               for c in flow["conflicts"]), flow["conflicts"]


def test_a_firewall_read_that_failed_is_named_with_its_error():
    flow = one({"client": {"ansible_host": "10.200.1.10", "reachability_probe": SILENT},
                "web": {"ansible_host": "10.200.2.10", "reachability_listeners": _listeners(),
                        "reachability_firewall": NFT_FAILED}})
    assert flow["cause"] == "unknown"
    assert "could not be read (firewall: firewall_info: nft -j list ruleset failed" in flow["culprit"]["text"]
    cand = [c for c in flow["candidates"] if c.get("host") == "web"]
    assert cand and "could not be read" in cand[0]["why"] and "reachability_read_firewall" not in cand[0]["decide"]


def test_a_host_never_read_is_said_to_be_unreached_not_unconfigured():
    flow = one({"client": {"ansible_host": "10.200.1.10", "reachability_probe": SILENT},
                "web": {"ansible_host": "10.200.2.10"}})
    assert flow["cause"] == "unknown"
    cand = [c for c in flow["candidates"] if c.get("host") == "web"]
    assert cand and "the host itself was not read" in cand[0]["why"]
    assert "ansible web -m ansible.builtin.ping" in cand[0]["decide"]


def test_a_firewall_left_out_on_purpose_keeps_its_advice():
    flow = one({"client": {"ansible_host": "10.200.1.10", "reachability_probe": SILENT},
                "web": {"ansible_host": "10.200.2.10", "reachability_listeners": _listeners(),
                        "reachability_firewall": {"skipped": True}}})
    cand = [c for c in flow["candidates"] if c.get("host") == "web"]
    assert cand and cand[0]["decide"] == "run the diagnosis with reachability_read_firewall: true"


def test_a_firewalld_stopped_between_gather_and_probe_gives_the_wire_answer_and_says_the_rules_differ():
    """fwd-nft's facts (read while firewalld ran) reject 80/tcp; then firewalld stopped and its rules went away,
    so the probe got a syn-ack: the wire decides, and the report says the rules read predict otherwise."""
    from ansible_collections.netdiag.reachability.plugins.filter.reachability import explain_facts
    seeds = {(f["address"], f["port"]): f for f in SEEDS["flows"]}
    flow = seeds[("10.200.2.11", 80)]
    syn_ack = dict(flow["probe"], state="open", reason="syn-ack", reply=dict(
        flow["probe"]["reply"], kind="syn-ack", icmp_type=None, icmp_code=None, icmp_name=None))
    out = explain_facts([dict(flow, probe=syn_ack)], SEEDS["hosts"])["flows"][0]
    assert out["cause"] == "ok" and out["decided_by"] == "wire"
    assert any("predict" in c and "the wire shows open" in c for c in out["conflicts"]), out["conflicts"]
