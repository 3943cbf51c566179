"""The report as a CI system reads it (JUnit XML) and as a job's artifacts carry it (set_stats data),
on the seed scenarios' saved facts."""
import copy
import json
import xml.etree.ElementTree as ET

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.reachability.plugins.filter import report_ci
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.run import explain
from ansible_collections.netdiag.reachability.plugins.plugin_utils.report import junit_xml, stats

from ..helpers import fixture


@pytest.fixture(scope="module")
def report():
    with open(fixture("explain", "seeds-facts.json")) as fh:
        facts = json.load(fh)
    return explain(copy.deepcopy(facts["flows"]), facts["hosts"])


def _cases(xml_text):
    root = ET.fromstring(xml_text.encode("utf-8"))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    return root, suite, suite.findall("testcase")


def test_one_test_case_per_flow_failed_exactly_when_not_as_expected(report):
    root, suite, cases = _cases(junit_xml(report))
    flows = report["flows"]
    assert len(cases) == len(flows) == int(suite.get("tests")) == int(root.get("tests"))
    assert int(suite.get("failures")) == report["summary"]["mismatched"] == sum(1 for c in cases if c.find("failure") is not None)
    for case, flow in zip(cases, flows):
        assert ("%s/%s" % (flow["port"], flow["protocol"])) in case.get("name") or flow["protocol"] == "icmp"
        assert case.get("classname") == "netdiag.reachability.%s" % flow["source"]
        assert (case.find("failure") is None) == bool(flow["matches_expect"])


def test_a_failure_carries_cause_culprit_and_the_fix_commands(report):
    dummy, dummy, cases = _cases(junit_xml(report))
    idx = next(i for i, f in enumerate(report["flows"]) if f["address"] == "10.200.2.11" and f["port"] == 80)
    failure = cases[idx].find("failure")
    assert cases[idx].get("name") == "client -> fwd-nft (10.200.2.11) 80/tcp"
    assert failure.get("type") == "host_firewall"
    assert failure.get("message").startswith("expected open, host_firewall: fwd-nft, nftables inet firewalld filter_IN_public")
    assert "culprit: fwd-nft" in failure.text
    assert "on fwd-nft: firewall-cmd --zone=public --add-port=80/tcp" in failure.text
    path = next(i for i, f in enumerate(report["flows"]) if f["cause"] == "path_block")
    assert "nft insert rule inet lab forward" in cases[path].find("failure").text


def test_control_characters_in_rule_text_still_make_valid_xml(report):
    rep = copy.deepcopy(report)
    flow = next(f for f in rep["flows"] if not f["matches_expect"])
    flow["culprit"] = {"summary": "comment \x01\x1b[31m <&> \"quoted\""}
    dummy, dummy, cases = _cases(junit_xml(rep, suite="ci gate"))
    failure = [c for c in cases if c.find("failure") is not None][0].find("failure")
    assert "<&> \"quoted\"" in failure.get("message") and "\x01" not in failure.get("message")


@pytest.mark.parametrize("bad,match", [
    ({"flows": []}, "not a netdiag.reachability report"),
    ("report.json", "not a netdiag.reachability report: 'str'"),
])
def test_not_a_report_is_a_clear_error(bad, match):
    with pytest.raises(InputError, match=match):
        junit_xml(bad)
    with pytest.raises(AnsibleFilterError, match="report_stats: " + match):
        report_ci.report_stats(bad)


def test_an_empty_suite_name_is_refused(report):
    with pytest.raises(AnsibleFilterError, match="report_junit: suite must be a non-empty string, got ''"):
        report_ci.report_junit(report, suite="")


def test_stats_are_the_summary_and_compact_verdicts(report):
    data = stats(report)
    assert json.loads(json.dumps(data)) == data  # plain JSON, as AWX stores artifacts
    assert data["summary"]["as_expected"] is False and data["summary"]["flows"] == len(report["flows"])
    assert data["summary"]["text"][0].startswith("16 flows checked: 4 ok, 12 failed")
    assert [f["cause"] for f in data["flows"]] == [f["cause"] for f in report["flows"]]
    fw = next(f for f in data["flows"] if f["address"] == "10.200.2.11" and f["port"] == 80)
    assert fw["flow"] == "client -> fwd-nft (10.200.2.11) 80/tcp" and fw["matches_expect"] is False
    assert {"host": "fwd-nft", "command": "firewall-cmd --zone=public --add-port=80/tcp"} in fw["fix_commands"]
    assert "evidence" not in fw
    assert len(json.dumps(data)) < len(json.dumps(report)) / 2


def test_filters_are_exported():
    assert set(report_ci.FilterModule().filters()) == {"report_junit", "report_stats"}
