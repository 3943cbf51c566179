# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""open_ports library: rule validation, plans from the seeds report, the management guards."""
import copy
import json
import os

import pytest

from ansible_collections.netdiag.reachability.plugins.plugin_utils import open_ports as op
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import REPORT_SCHEMA
from ansible_collections.netdiag.reachability.plugins.module_utils.fix import firewalld_guard, guard, ufw_guard
from ansible_collections.netdiag.reachability.plugins.module_utils.fix import raw_rule
from ansible_collections.netdiag.reachability.plugins.module_utils.fix import ufw_port
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import iptables
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import nftables

from ..helpers import fixture

HERE = os.path.dirname(os.path.abspath(__file__))
REPORT = fixture("open_ports", "seeds-report.json")
MGMT = {"source": "10.200.255.1", "address": "10.200.2.17", "port": 22}
HOSTS = ["client", "fwd-nft", "fwd-ipt", "ufw", "nft-drop", "ipt-reject", "ipt-legacy", "healthy", "dns", "loopback", "router"]

BAD = [
    ("not a list", "a rule", "must be a list"),
    ("not a dict", ["80/tcp"], "a rule is a dict"),
    ("unknown key", [{"backend": "ufw", "ports": ["80/tcp"], "prot": "tcp"}], "unknown key 'prot'"),
    ("no backend", [{"ports": ["80/tcp"]}], "invalid backend None"),
    ("bad backend", [{"backend": "pf", "ports": ["80/tcp"]}], "invalid backend 'pf'"),
    ("ports a string", [{"backend": "ufw", "ports": "80/tcp"}], "ports must be a list, got '80/tcp'"),
    ("no ports", [{"backend": "ufw", "ports": []}], "non-empty list"),
    ("port out of range", [{"backend": "ufw", "ports": ["70000/tcp"]}], "70000"),
    ("port not a number", [{"backend": "firewalld", "ports": ["http/tcp"]}], "'http/tcp'"),
    ("protocol unknown to ufw", [{"backend": "ufw", "ports": ["80/sctp"]}], "'sctp'"),
    ("bad state", [{"backend": "ufw", "ports": ["80/tcp"], "state": "open"}], "invalid state 'open'"),
    ("absent on raw", [{"backend": "nftables", "ports": ["80/tcp"], "state": "absent"}], "state absent is not supported"),
    ("zone on ufw", [{"backend": "ufw", "ports": ["80/tcp"], "zone": "public"}], "zone 'public' is only for backend firewalld"),
    ("bad zone name", [{"backend": "firewalld", "ports": ["80/tcp"], "zone": "pub lic"}], "invalid zone name 'pub lic'"),
    ("bad source", [{"backend": "ufw", "ports": ["80/tcp"], "source": "10.0.0.300"}], "invalid source '10.0.0.300'"),
    ("source on firewalld", [{"backend": "firewalld", "ports": ["80/tcp"], "source": "10.0.0.1"}], "not supported for backend firewalld"),
    ("bad family", [{"backend": "nftables", "ports": ["80/tcp"], "family": "arp"}], "invalid family 'arp'"),
    ("unknown host", [{"backend": "ufw", "ports": ["80/tcp"], "host": "nohost"}], "host 'nohost' is not a host of the inventory"),
    ("unknown verify_from", [{"backend": "ufw", "ports": ["80/tcp"], "verify_from": "nobody"}], "verify_from 'nobody'"),
]


@pytest.mark.parametrize("name,rules,message", BAD, ids=[b[0] for b in BAD])
def test_bad_rules_are_refused_naming_the_value(name, rules, message):
    with pytest.raises(InputError) as err:
        op.normalize_rules(rules, HOSTS)
    assert message in str(err.value)


def test_rules_are_normalised_and_filtered_by_host():
    rules = [{"backend": "firewalld", "ports": ["80", "80/tcp", "8000-8010/udp"]},
             {"backend": "ufw", "ports": [9100], "source": "10.200.1.10", "host": "ufw"}]
    got = op.rules_for_host(rules, "fwd-nft", HOSTS)
    assert [r["ports"] for r in got] == [["80/tcp", "8000-8010/udp"]]
    assert [r["backend"] for r in op.rules_for_host(rules, "ufw", HOSTS)] == ["firewalld", "ufw"]


def _report():
    with open(REPORT) as fh:
        return json.load(fh)


def test_plan_from_the_seeds_report_fixes_host_firewalls_and_lists_the_rest():
    plan = op.plan_from_report(_report(), HOSTS, HOSTS)
    by_host = {r["host"]: r for r in plan["rules"]}
    assert set(by_host) == {"fwd-nft", "fwd-ipt", "ufw", "nft-drop", "ipt-reject", "ipt-legacy"}
    assert by_host["fwd-nft"]["backend"] == "firewalld" and by_host["fwd-nft"]["zone"] == "public"
    assert by_host["ufw"]["source"] == "10.200.1.10"
    assert by_host["ipt-legacy"]["ports"] == ["3306/tcp"] and by_host["ipt-legacy"]["backend"] == "iptables-legacy"
    assert by_host["nft-drop"]["verify_from"] == "client" and by_host["nft-drop"]["verify_address"] == "10.200.2.18"
    manual = {m["flow"]: m for m in plan["manual"]}
    causes = sorted(m["cause"] for m in plan["manual"])
    assert causes == ["loopback_only", "nat", "no_listener", "no_listener", "path_block", "path_block"]
    router = [m for m in plan["manual"] if m["host"] == "router" and m["cause"] == "path_block"]
    assert router and all(m["commands"] and "nft insert rule inet lab forward" in m["commands"][0] for m in router)
    assert "client -> loopback (10.200.2.13) 8080/tcp" in manual


def test_plan_lists_fixes_outside_the_play_as_manual():
    plan = op.plan_from_report(_report(), ["fwd-nft"], HOSTS)
    assert plan["hosts"] == ["fwd-nft"]
    assert any(m["host"] == "ufw" and "not a host of this play" in m["why"] for m in plan["manual"])


@pytest.mark.parametrize("report,message", [
    ({"schema": "other"}, "is not a netdiag.reachability diagnose report"),
    ([], "is not a netdiag.reachability diagnose report"),
    ({"schema": REPORT_SCHEMA, "version": 9, "flows": []}, "report version 9"),
])
def test_not_a_report_is_refused(report, message):
    with pytest.raises(InputError) as err:
        op.plan_from_report(report, HOSTS)
    assert message in str(err.value)


def test_management_from_ssh_connection():
    assert guard.management_from_ssh_connection("10.200.255.1 53786 10.200.2.17 22") == MGMT
    assert guard.management_from_ssh_connection("") is None


# --------------------------------------------------------------------------- firewalld guard

def _fw_facts(services=("ssh", "dhcpv6-client"), ports=("8000/tcp",)):
    zone = {"target": "default", "services": list(services), "ports": list(ports), "protocols": [], "source_ports": [],
            "forward_ports": [], "masquerade": False, "forward": True, "icmp_blocks": [], "icmp_block_inversion": False,
            "rich_rules": [], "interfaces": [], "sources": []}
    svc = {"ssh": {"ports": ["22/tcp"]}, "dhcpv6-client": {"ports": ["546/udp"]}}
    cfg = {"default_zone": "public", "zones": {"public": zone, "block": dict(zone, services=[], ports=[], target="REJECT")}}
    return {"running": True, "services": svc, "runtime": copy.deepcopy(cfg), "permanent": copy.deepcopy(cfg)}, zone


def test_firewalld_guard_refuses_removing_ssh_from_the_zone_that_handles_it():
    facts, zone = _fw_facts()
    after = dict(zone, services=["dhcpv6-client"])
    with pytest.raises(guard.WouldCutManagement) as err:
        firewalld_guard.firewalld_guard(facts, "public", {"runtime": after}, MGMT)
    assert "zone public" in str(err.value) and "10.200.255.1" in str(err.value)


def test_firewalld_guard_allows_opening_and_changes_in_other_zones():
    facts, zone = _fw_facts()
    assert firewalld_guard.firewalld_guard(facts, "public", {"runtime": dict(zone, ports=["8000/tcp", "80/tcp"])}, MGMT)
    firewalld_guard.firewalld_guard(facts, "block", {"runtime": dict(zone, services=[])}, MGMT)
    # ssh by port instead of service: removing the service is fine
    facts2, zone2 = _fw_facts(ports=("22/tcp",))
    firewalld_guard.firewalld_guard(facts2, "public", {"permanent": dict(zone2, services=[])}, MGMT)


# --------------------------------------------------------------------------- ufw

def _ufw_facts(rules_text):
    rules = []
    for family, text in rules_text:
        rules += __import__("ansible_collections.netdiag.reachability.plugins.module_utils.rules.ufw",
                            fromlist=["x"]).parse_user_rules(text, family, first_number=len(rules) + 1)
    return {"enabled": True, "ipv6": True, "defaults": {"incoming": "deny"}, "rules": rules}


SSH_V4 = "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n"
SSH_V6 = "### tuple ### allow tcp 22 ::/0 any ::/0 in\n-A ufw6-user-input -p tcp --dport 22 -j ACCEPT\n"


def test_ufw_plan_adds_only_missing_rules_and_is_idempotent():
    facts = _ufw_facts([("ipv4", SSH_V4), ("ipv6", SSH_V6)])
    req = ufw_port.normalize_request(["80/tcp"], source="10.200.1.10")
    commands, predicted, todo = ufw_port.plan(facts, req)
    assert commands == [["ufw", "allow", "proto", "tcp", "from", "10.200.1.10", "to", "any", "port", "80"]]
    assert "80/tcp ALLOW IN 10.200.1.10" in [r["text"] for r in predicted]
    assert ufw_port.plan(dict(facts, rules=predicted), req)[0] == []
    # an allow from anywhere covers IPv4 and IPv6
    assert [c[5] for c in ufw_port.plan(facts, ufw_port.normalize_request(["22/tcp"]))[0]] == []


def test_ufw_guard_refuses_removing_the_ssh_allow():
    facts = _ufw_facts([("ipv4", SSH_V4), ("ipv6", SSH_V6)])
    commands, predicted, todo = ufw_port.plan(facts, ufw_port.normalize_request(["22/tcp"], state="absent"))
    assert commands[0][:4] == ["ufw", "--force", "delete", "allow"]
    with pytest.raises(guard.WouldCutManagement) as err:
        ufw_guard.ufw_guard(facts, dict(facts, rules=predicted), MGMT)
    assert "ufw" in str(err.value) and "22/tcp" in str(err.value)
    # removing a rule that does not carry ssh is fine
    ufw_guard.ufw_guard(facts, dict(facts, rules=[r for r in facts["rules"] if r["v6"]] + facts["rules"][:1]), MGMT)


def test_ufw_bad_request():
    with pytest.raises(InputError):
        ufw_port.normalize_request(["80/tcp"], source="nope")
    with pytest.raises(InputError):
        ufw_port.normalize_request("80/tcp")


# --------------------------------------------------------------------------- raw rules

NFT_DROP = {"nftables": [
    {"metainfo": {"version": "1.0.6", "release_name": "x", "json_schema_version": 1}},
    {"table": {"family": "inet", "name": "filter", "handle": 1}},
    {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1, "type": "filter", "hook": "input",
               "prio": 0, "policy": "accept"}},
    {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 2, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}},
        {"drop": None}]}},
    {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 3, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},
        {"drop": None}]}},
]}


def _nft():
    return nftables.parse_nft_json(json.dumps(NFT_DROP))


def test_raw_nft_insert_goes_right_before_the_blocking_rule_and_is_idempotent():
    req = raw_rule.normalize_request("nftables", ["80/tcp"], address="10.200.2.18")
    inserts, predicted, notes = raw_rule.plan_present(_nft(), req, iif="eth0")
    assert [" ".join(i["command"]) for i in inserts] == [
        'nft insert rule inet filter input position 2 tcp dport 80 accept comment "netdiag.reachability open_ports"']
    assert raw_rule.plan_present(predicted, req, iif="eth0")[0] == []


def test_raw_iptables_insert_uses_the_rule_position_and_refuses_another_backend():
    rs = iptables.parse_iptables_save("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"
                                      "-A INPUT -p tcp -m tcp --dport 80 -j REJECT\nCOMMIT\n",
                                      family="ipv4", backend="iptables-legacy")
    req = raw_rule.normalize_request("iptables-legacy", ["80/tcp"], source="10.200.1.10")
    inserts, dummy, dummy2 = raw_rule.plan_present(rs, req)
    assert inserts[0]["command"][:6] == ["iptables-legacy", "-t", "filter", "-I", "INPUT", "2"]
    with pytest.raises(raw_rule.RawRuleError) as err:
        raw_rule.plan_present(rs, raw_rule.normalize_request("nftables", ["80/tcp"]))
    assert "use backend iptables-legacy" in str(err.value)


def test_raw_absent_finds_our_rule_in_a_captured_nft_ruleset_and_only_ours():
    """nft-drop after open_ports inserted 9104/tcp before a drop (captured from the lab with nft -j):
    nftables writes "tcp dport 9104", the protocol lives in the port match; state=absent must find it."""
    with open(fixture("open_ports", "nft-drop-with-ours.json")) as fh:
        rs = nftables.parse_nft_json(fh.read())
    deletes, predicted = raw_rule.plan_absent(rs, raw_rule.normalize_request("nftables", ["9104/tcp"], state="absent"))
    assert [" ".join(d["command"]) for d in deletes] == ["nft delete rule inet filter input handle 4"]
    texts = [r["origin"]["text"] for t in predicted["tables"] for c in t["chains"] for r in c["rules"]]
    assert "tcp dport 9104 drop" in texts and not any("open_ports" in t for t in texts)
    # another port, another protocol, or a source the rule does not have: nothing of ours to delete
    for ports, source in ((["9105/tcp"], None), (["9104/udp"], None), (["9104/tcp"], "10.200.1.10")):
        assert raw_rule.plan_absent(rs, raw_rule.normalize_request("nftables", ports, state="absent",
                                                                   source=source))[0] == []


def test_raw_guard_compares_the_management_connection_before_and_after():
    before = _nft()
    after = copy.deepcopy(before)
    after["tables"][0]["chains"][0]["rules"] = after["tables"][0]["chains"][0]["rules"][:1]  # ssh drop removed
    assert raw_rule.guard(after, after, MGMT)  # accept before and after
    with pytest.raises(guard.WouldCutManagement):
        raw_rule.guard(after, before, MGMT)
