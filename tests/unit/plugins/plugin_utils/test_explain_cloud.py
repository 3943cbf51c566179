# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cloud layer in the diagnosis: which security_group_info reads the flows need
(plan.cloud_queries), and what the explainer makes of their verdicts.

The verdicts come from the real library against a moto EC2 server on loopback, built to stand in
front of two hosts of the seeds lab (same private addresses); the host facts and probe results are
the ones captured from the lab (fixtures/explain/seeds-facts.json)."""

import copy
import json

import pytest

from ansible_collections.netdiag.reachability.plugins.plugin_utils import plan as plan_lib
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud.evaluate import security_group_info
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.run import explain

from ..module_utils.cloud.test_aws import REGION, eni, ingress

from ..helpers import fixture

FACTS = fixture("explain", "seeds-facts.json")
CLIENT = "10.200.1.10"
UFW, HEALTHY = "10.200.2.17", "10.200.2.10"


@pytest.fixture(scope="module")
def facts():
    with open(FACTS) as fh:
        return json.load(fh)


def seed_flow(facts, address, port):
    return copy.deepcopy(next(f for f in facts["flows"] if f["address"] == address and f["port"] == port))


def settings(url):
    return {"provider": "aws", "region": REGION, "endpoint_url": url, "access_key": "testing",
            "secret_key": "testing"}


@pytest.fixture
def cloud(ec2, moto_url):
    """The lab's back network as a VPC subnet: ufw's interface in a group that allows only ssh from the
    front network; healthy's in a group that allows 80 and 8081 from it."""
    vpc = ec2.create_vpc(CidrBlock="10.200.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.200.2.0/24")["Subnet"]["SubnetId"]
    ssh_only = ec2.create_security_group(GroupName="ssh-only", Description="ssh", VpcId=vpc)["GroupId"]
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ssh_rule = ingress(ec2, ssh_only, "tcp", 22, cidr="10.200.1.0/24")
    ingress(ec2, web, "tcp", 80, cidr="10.200.1.0/24")
    ingress(ec2, web, "tcp", 8081, cidr="10.200.1.0/24")
    eni(ec2, subnet, [ssh_only], UFW)
    eni(ec2, subnet, [web], HEALTHY)
    return {"url": moto_url, "ssh_only": ssh_only, "ssh_rule": ssh_rule, "web": web}


def read(cloud, queries):
    """Run security_group_info for each query the way the role's loop does (credentials from the
    settings, not from the query); return the loop's results."""
    results = []
    for q in queries:
        opts = dict(q["options"], access_key="testing", secret_key="testing")
        provider = opts.pop("provider")
        out = security_group_info(provider, addresses=q["addresses"], packets=q["packets"], **opts)
        results.append(dict(out, item=q, changed=False))
    return {"results": results}


def attach(flows, results):
    """What plan.assemble does with the cloud results: each flow gets the verdicts of its own packet."""
    verdicts, errors = plan_lib.cloud_verdicts(results)
    for f in flows:
        key = (f["source_address"], f["address"], f["port"], f["protocol"])
        if verdicts.get(key):
            f["cloud"] = verdicts[key]
        if f["address"] in errors:
            f["cloud_error"] = errors[f["address"]]
    return flows


def plan_of(flows):
    return {"flows": [{k: f[k] for k in ("source", "destination", "address", "port", "protocol", "expect")}
                      for f in flows]}


def hostvars(facts, **cloud_by_host):
    hv = {"client": {"ansible_host": CLIENT, "ansible_facts": {
        "interfaces": ["lo", "eth0"], "default_ipv4": {"interface": "eth0"},
        "eth0": {"ipv4": {"address": CLIENT, "prefix": "24"}}, "all_ipv4_addresses": [CLIENT]}}}
    for host, value in cloud_by_host.items():
        hv[host] = {"ansible_host": facts["hosts"][host]["addresses"][0], "reachability_cloud": value}
    return hv


def test_queries_follow_the_destinations_settings(facts, cloud):
    flows = [seed_flow(facts, UFW, 80), seed_flow(facts, HEALTHY, 80), seed_flow(facts, HEALTHY, 8081)]
    queries = plan_lib.cloud_queries(plan_of(flows), hostvars(facts, ufw=settings(cloud["url"])))
    assert len(queries) == 1                                  # healthy has no cloud settings: no query
    q = queries[0]
    assert q["host"] == "ufw" and q["addresses"] == [UFW] and q["settings_from"] == "ufw"
    # no credential in a query: the role's loop prints its items with -v
    assert "testing" not in json.dumps(q) and set(q["options"]) == {"provider", "region", "endpoint_url"}
    assert q["packets"] == [{"proto": "tcp", "src": CLIENT, "dst": UFW, "dport": 80}]   # the source as gathered
    # the controller's settings cover the destinations without their own
    queries = plan_lib.cloud_queries(plan_of(flows), hostvars(facts, ufw=settings(cloud["url"])),
                                     default=settings(cloud["url"]))
    assert sorted(q["addresses"][0] for q in queries) == [HEALTHY, UFW]
    assert [q["settings_from"] for q in queries if q["addresses"] == [HEALTHY]] == [None]   # the controller's
    assert [len(q["packets"]) for q in queries if q["addresses"] == [HEALTHY]] == [2]


@pytest.mark.parametrize("value,needle", [
    ({"region": "eu-west-1", "secret_key": "s3cr3t"}, "provider aws or alicloud"),
    ({"provider": "gcp", "secret_key": "s3cr3t"}, "provider aws or alicloud"),
    ({"provider": "aws", "regoin": "eu-west-1", "secret_key": "s3cr3t"}, "unknown keys: regoin"),
    ("aws", "must be a dict"),
])
def test_bad_cloud_settings_name_the_host(facts, value, needle):
    with pytest.raises(InputError) as exc:
        plan_lib.cloud_queries(plan_of([seed_flow(facts, UFW, 80)]), hostvars(facts, ufw=value))
    assert needle in str(exc.value) and "ufw" in str(exc.value)
    assert "s3cr3t" not in str(exc.value)                   # no credential in an error message


def test_a_security_group_that_allows_no_such_port_is_the_culprit(facts, cloud):
    flows = [seed_flow(facts, UFW, 80)]
    results = read(cloud, plan_lib.cloud_queries(plan_of(flows), hostvars(facts, ufw=settings(cloud["url"]))))
    f = explain(attach(flows, results), facts["hosts"])["flows"][0]
    assert f["state"] == "filtered"
    assert f["cause"] == "security_group"
    assert f["culprit"]["provider"] == "aws" and f["culprit"]["layer"] == "security_group"
    assert cloud["ssh_only"] in f["culprit"]["text"]
    # the minimal fix, as the command a human types and as data
    assert "aws ec2 authorize-security-group-ingress" in f["fix"]["commands"][0]["command"]
    assert cloud["ssh_only"] in f["fix"]["commands"][0]["command"]
    assert f["fix"]["cloud"][0]["rule"]["from_port"] == 80 and f["fix"]["manual"] is True
    # ufw would drop it too once the group lets it in: said, not hidden
    assert any("ufw" in c and "too" in c for c in f["conflicts"])


def test_a_denial_for_another_port_does_not_blame_the_group(facts, cloud):
    """A verdict about 22/tcp says nothing about a silent 80/tcp flow."""
    other = [seed_flow(facts, UFW, 80)]
    other[0]["port"] = 22
    results = read(cloud, plan_lib.cloud_queries(plan_of(other), hostvars(facts, ufw=settings(cloud["url"]))))
    flows = [seed_flow(facts, UFW, 80)]
    flows[0]["cloud"] = [v for r in results["results"] for v in r["verdicts"]]   # handed over wholesale
    f = explain(flows, facts["hosts"])["flows"][0]
    assert f["cause"] == "host_firewall" and "ufw" in json.dumps(f["culprit"])
    # the same through the host facts, as a whole module result
    hosts = copy.deepcopy(facts["hosts"])
    hosts["ufw"]["cloud"] = results["results"][0]
    f = explain([seed_flow(facts, UFW, 80)], hosts)["flows"][0]
    assert f["cause"] == "host_firewall"


def test_a_group_that_allows_leaves_the_host_firewall_as_the_culprit(facts, cloud):
    flows = [seed_flow(facts, HEALTHY, 8081)]     # the router drops 8081 in the lab
    results = read(cloud, plan_lib.cloud_queries(plan_of(flows), hostvars(facts, healthy=settings(cloud["url"]))))
    f = explain(attach(flows, results), facts["hosts"])["flows"][0]
    assert f["cause"] == "path_block"
    assert f["evidence"]["cloud"][0]["verdict"] == "accept"
    assert cloud["web"] in json.dumps(f["evidence"]["cloud"][0]["rule"])


def test_a_cloud_read_that_failed_is_named(facts, cloud):
    flows = [seed_flow(facts, HEALTHY, 9999)]
    failed = {"results": [{"failed": True, "msg": "AuthFailure: AWS was not able to validate the provided access "
                                                  "credentials", "item": {"addresses": [HEALTHY]}}]}
    f = explain(attach(flows, failed), facts["hosts"])["flows"][0]
    assert f["cause"] == "no_listener"                       # the host's own answer still stands
    assert "AuthFailure" in f["evidence"]["cloud_error"]


def test_garbage_in_the_cloud_slot_is_ignored_not_a_crash(facts):
    flows = [seed_flow(facts, UFW, 80)]
    flows[0]["cloud"] = ["accept", 3, {"verdicts": "nope"}, None]
    hosts = copy.deepcopy(facts["hosts"])
    hosts["ufw"]["cloud"] = {"verdicts": ["x"]}
    f = explain(flows, hosts)["flows"][0]
    assert f["cause"] == "host_firewall"
