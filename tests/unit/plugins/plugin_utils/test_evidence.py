"""The evidence file (plugin_utils/evidence.py and the evidence / evidence_explain filters): what a gather-only
run saves, and how an explain-only run merges saved batches - the newer evidence wins, the report is the one the
same evidence gives in one run, and a file that is not evidence is named."""
import copy
import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.reachability.plugins.filter.reachability import evidence_explain, explain_facts
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.plugin_utils import evidence

from ..helpers import fixture

SEEDS = json.load(open(fixture("explain", "seeds-facts.json")))


def bundle(flows, hosts, created=None):
    return {"schema": evidence.SCHEMA, "created": created, "flows": flows, "hosts": hosts}


def causes(report):
    return {(f["address"], f["port"], f["protocol"]): f["cause"] for f in report["flows"]}


def test_one_bundle_explains_as_the_facts_do():
    report = evidence_explain(bundle(SEEDS["flows"], SEEDS["hosts"]))
    assert report == explain_facts(SEEDS["flows"], SEEDS["hosts"])
    assert len(report["flows"]) == len(SEEDS["flows"])


def test_batches_merge_into_the_report_of_one_run():
    half = len(SEEDS["flows"]) // 2
    first, second = SEEDS["flows"][:half], SEEDS["flows"][half:]

    # each batch gathered only the hosts its flows concern
    def hosts_of(flows):
        names = {f["source"] for f in flows} | {f["destination"] for f in flows if f.get("destination")} | {"router"}
        return {h: v for h, v in SEEDS["hosts"].items() if h in names}
    merged = evidence_explain([json.dumps(bundle(first, hosts_of(first), "2026-12-07T10:00:00+00:00")),
                               bundle(second, hosts_of(second), "2026-12-07T11:00:00+00:00")],
                              ["b1/evidence.json", "b2/evidence.json"])
    assert merged == explain_facts(SEEDS["flows"], SEEDS["hosts"])


def test_the_newer_evidence_wins_for_a_flow_and_a_host_whatever_the_order_given():
    flow = copy.deepcopy(next(f for f in SEEDS["flows"] if f["probe"].get("state") == "open"))
    key = (flow["address"], flow["port"], flow["protocol"])
    hosts = SEEDS["hosts"]
    old = bundle([flow], hosts, "2026-12-07T10:00:00+00:00")
    closed = dict(flow, probe=dict(flow["probe"], state="closed", reason="reset", reply=dict(flow["probe"]["reply"], kind="rst")))
    # later: the service stopped, and the destination's listeners are gone
    dest = flow["destination"]
    new_hosts = dict(hosts, **{dest: dict(hosts[dest], listeners=[])})
    new = bundle([closed], new_hosts, "2026-12-07T12:00:00+00:00")
    for order in ([old, new], [new, old]):
        flows, merged_hosts = evidence.merge(order)
        assert [f["probe"]["state"] for f in flows] == ["closed"]
        assert merged_hosts[dest]["listeners"] == []
    assert causes(evidence_explain([new, old]))[key] == "no_listener"
    assert causes(evidence_explain([old]))[key] == "ok"


def test_bundle_keeps_no_inventory_variable_and_no_credential():
    plan = {"flows": [{"name": None, "source": "client", "destination": "web", "address": "10.200.2.10", "port": 80,
                       "protocol": "tcp", "expect": "open"}],
            "probes": {"client": [{"host": "10.200.2.10", "protocol": "tcp", "ports": [80]}]},
            "gather": ["client", "web"], "sources": ["client"]}
    secret = {"provider": "aws", "access_key": "AKIAEXAMPLE", "secret_key": "s3cr3t-value"}
    hostvars = {"client": {"ansible_host": "10.200.1.10", "reachability_cloud": secret, "ansible_password": "pw-value",
                           "reachability_probe": {"results": [{"address": "10.200.2.10", "port": 80, "protocol": "tcp",
                                                               "state": "open", "reason": "syn-ack"}]}},
                "web": {"ansible_host": "10.200.2.10", "reachability_cloud": secret}}
    from ansible_collections.netdiag.reachability.plugins.filter.reachability import evidence as evidence_filter
    saved = evidence_filter(plan, hostvars, None, "2026-12-07T10:00:00+00:00")
    text = json.dumps(saved)
    assert saved["schema"] == evidence.SCHEMA and saved["created"] == "2026-12-07T10:00:00+00:00"
    assert [f["probe"]["state"] for f in saved["flows"]] == ["open"]
    assert "s3cr3t-value" not in text and "AKIAEXAMPLE" not in text and "pw-value" not in text
    assert evidence_explain(json.loads(text))["flows"][0]["cause"] == "ok"


@pytest.mark.parametrize("bundles,names,needle", [
    ([], None, "no evidence to explain"),
    (["{not json"], ["b1/evidence.json"], "b1/evidence.json is not JSON"),
    ([{"schema": "netdiag.reachability/report", "flows": [], "hosts": {}}], ["report.json"],
     "report.json has schema 'netdiag.reachability/report'"),
    ([{"schema": evidence.SCHEMA, "flows": {}, "hosts": {}}], ["x.json"], "x.json must hold a list 'flows'"),
    ([{"schema": evidence.SCHEMA, "flows": [{"port": 80}], "hosts": {}}], ["x.json"], "x.json: flows[0] must be a flow"),
    ([{"schema": evidence.SCHEMA, "flows": [], "hosts": {}, "created": 5}], None, "evidence[0]: 'created' must be"),
    ([[1, 2]], None, "evidence[0] is not an evidence bundle"),
])
def test_what_is_not_evidence_is_named(bundles, names, needle):
    with pytest.raises(InputError, match=None) as err:
        evidence.merge(bundles, names)
    assert needle in str(err.value)
    with pytest.raises(AnsibleFilterError) as err:
        evidence_explain(bundles, names)
    assert needle in str(err.value) and str(err.value).startswith("evidence_explain: ")
