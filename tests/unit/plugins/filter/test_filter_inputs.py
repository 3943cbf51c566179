# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filters given the wrong shapes (issue #17): an AnsibleFilterError naming the filter and the key
path, never a raw ``list indices must be integers`` or ``'int' object has no attribute 'get'``."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.reachability.plugins.filter import reachability
from ansible_collections.netdiag.reachability.plugins.filter.firewall_verdict import firewall_verdict

from ..helpers import load_json

GROUPS = {"all": ["web01", "app01"], "ungrouped": ["web01", "app01"]}
HOSTVARS = {"web01": {"ansible_host": "10.200.1.10"}, "app01": {"ansible_host": "10.200.1.20"}}
FLOWS = [{"from": "app01", "to": "web01", "ports": ["80/tcp"]}]


def _plan():
    return reachability.flow_plan(FLOWS, GROUPS, HOSTVARS)


def _fails(func, *args):
    with pytest.raises(AnsibleFilterError) as exc:
        func(*args)
    return str(exc.value)


def test_explain_on_a_good_plan_still_answers():
    report = reachability.explain(_plan(), HOSTVARS)
    assert [(f["source"], f["address"], f["port"]) for f in report["flows"]] == [("app01", "10.200.1.10", 80)]


def test_explain_facts_on_saved_facts_still_answers():
    saved = load_json("explain", "seeds-facts.json")
    report = reachability.explain_facts(saved["flows"], saved["hosts"])
    assert len(report["flows"]) == len(saved["flows"])
    assert reachability.report_summary(report)


def _with_probe(results):
    hv = dict(HOSTVARS)
    hv["app01"] = dict(hv["app01"], reachability_probe={"results": results})
    return hv


@pytest.mark.parametrize("func, args, needle", [
    (reachability.explain, lambda: ([_plan()], HOSTVARS), "explain: invalid input: plan must be a dict, got list"),
    (reachability.explain, lambda: ({"flows": []}, HOSTVARS), "plan has no 'gather'"),
    (reachability.explain, lambda: (dict(_plan(), flows=[5]), HOSTVARS), "plan.flows[0] must be a dict, got int 5"),
    (reachability.explain, lambda: (dict(_plan(), flows=[dict(_plan()["flows"][0], port="80")]), HOSTVARS),
     "plan.flows[0].port must be an integer, got str '80'"),
    (reachability.explain, lambda: (_plan(), [HOSTVARS]), "hostvars must be a mapping"),
    (reachability.explain, lambda: (_plan(), {"app01": 5}), "hostvars['app01'] must be a mapping of variables"),
    (reachability.explain, lambda: (_plan(), _with_probe([5])),
     "hostvars['app01'].reachability_probe.results[0] must be a dict, got int 5"),
    (reachability.explain, lambda: (_plan(), _with_probe({"state": "open"})),
     "hostvars['app01'].reachability_probe.results must be a list, got dict"),
    (reachability.explain, lambda: (_plan(), {"app01": {"ansible_facts": {"interfaces": "eth0"}}}),
     "hostvars['app01'].ansible_facts.interfaces must be a list"),
    (reachability.explain, lambda: (_plan(), {"web01": {"reachability_listeners": {"listeners": {"port": 80}}}}),
     "hostvars['web01'].reachability_listeners.listeners must be a list"),
    (reachability.explain, lambda: (_plan(), HOSTVARS, "aws"), "cloud must be a dict or a list, got str"),
    (reachability.cloud_queries, lambda: ([1], HOSTVARS), "cloud_queries: invalid input: plan must be a dict"),
    (reachability.explain_facts, lambda: ({"flows": []},), "explain_facts: invalid input: flows must be a list, got dict"),
    (reachability.explain_facts, lambda: ([{"address": "10.0.0.1", "port": 80}],), "flows[0] has no 'protocol'"),
    (reachability.explain_facts, lambda: ([{"address": "10.0.0.1", "port": 80, "protocol": "tcp", "probe": "open"}],),
     "flows[0].probe must be a dict"),
    (reachability.explain_facts, lambda: ([], {"web01": {"listeners": [80]}}), "hosts['web01'].listeners[0] must be a dict"),
    (reachability.explain_facts, lambda: ([], {"web01": {"addresses": "10.0.0.1"}}), "hosts['web01'].addresses must be a list"),
    (reachability.report_markdown, lambda: ([],), "report_markdown: invalid input: report must be a dict, got list"),
    (reachability.report_html, lambda: ({"flows": "x"},), "report.flows must be a list"),
    (reachability.report_summary, lambda: ({"flows": [1]},), "report.flows[0] must be a dict"),
    (reachability.flow_plan, lambda: (FLOWS, ["all"], HOSTVARS), "flow_plan: invalid input: groups must be a dict"),
    (reachability.flow_plan, lambda: (FLOWS, {"all": "web01"}, HOSTVARS), "groups['all'] must be a list"),
])
def test_wrong_shapes_name_the_key_path(func, args, needle):
    msg = _fails(func, *args())
    assert needle in msg


FACTS = {"ruleset": {"model": 1, "tables": [], "warnings": []}, "layers": {}, "local_addresses": ["10.0.0.2"]}
PACKET = {"src": "10.0.0.1", "dst": "10.0.0.2", "proto": "tcp", "dport": 80}


def test_firewall_verdict_on_good_facts():
    assert firewall_verdict(FACTS, PACKET)["verdict"] == "accept"


@pytest.mark.parametrize("facts, packet, needle", [
    ([FACTS], PACKET, "the facts must be the dict firewall_info returned, got list"),
    (dict(FACTS, ruleset=[]), PACKET, "facts.ruleset must be a dict, got list"),
    (dict(FACTS, local_addresses="10.0.0.2"), PACKET, "facts.local_addresses must be a list"),
    (dict(FACTS, local_addresses=[10]), PACKET, "facts.local_addresses[0] must be an address string"),
    (dict(FACTS, firewalld=[]), PACKET, "facts.firewalld must be a dict"),
    (FACTS, "10.0.0.2:80", "the packet must be a dict or a list of dicts, got str"),
    (FACTS, [PACKET, 5], "packets[1] must be a dict, got int 5"),
    (FACTS, dict(PACKET, dport="8\u00b2"), "invalid dport '8\u00b2': not a number"),
    (FACTS, dict(PACKET, dport=70000), "invalid dport 70000: must be between 0 and 65535"),
    (dict(FACTS, ruleset={"tables": [{"backend": "nftables", "family": "inet", "name": "t", "chains": [
        {"name": "input", "hook": "input", "priority": 0, "policy": "accept", "rules": [
            {"matches": [{"key": "dport", "values": "80"}], "verdict": {"kind": "drop"}, "origin": {}}]}]}]}),
     PACKET, "tables[0].chains[0].rules[0].matches[0].values must be a list"),
])
def test_firewall_verdict_wrong_shapes(facts, packet, needle):
    msg = _fails(firewall_verdict, facts, packet)
    assert msg.startswith("firewall_verdict: ")
    assert needle in msg
