# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remediate playbook's plan (open_ports.plan_run): --limit, open_ports_rules without a report, and the
report's security-group fixes as security_group_rule arguments - the last closed on a moto EC2 server: the
planned change applied to the group makes the re-read verdict accept."""

import copy
import json

import pytest

from ansible_collections.netdiag.reachability.plugins.plugin_utils import open_ports as op
from ansible_collections.netdiag.reachability.plugins.plugin_utils import plan as plan_lib
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import alicloud, aws
from ansible_collections.netdiag.reachability.plugins.module_utils.fix import alicloud_security_group, network_acl, security_group
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.run import explain

from . import test_explain_cloud as cloud_tests
from .test_explain_cloud import CLIENT, UFW, attach, hostvars, plan_of, read, seed_flow, settings
from ..helpers import fixture
from ..module_utils.fix import test_alicloud_security_group as alicloud_tests

REPORT = fixture("open_ports", "seeds-report.json")
HOSTS = ["client", "fwd-nft", "fwd-ipt", "ufw", "nft-drop", "ipt-reject", "ipt-legacy", "healthy", "dns", "loopback", "router"]
FIXED = {"fwd-nft", "fwd-ipt", "ufw", "nft-drop", "ipt-reject", "ipt-legacy"}
facts = cloud_tests.facts   # the fixtures: captured seeds facts, the moto VPC in front of ufw and healthy
cloud = cloud_tests.cloud
account = alicloud_tests.account   # the ECS replay server that applies the writes


def _report():
    with open(REPORT) as fh:
        return json.load(fh)


def test_limit_keeps_only_the_limited_hosts_and_names_the_others():
    plan = op.plan_run(_report(), [], HOSTS, limit_pattern="ufw", limit_hosts=["ufw"])
    assert plan["hosts"] == ["ufw"] and [r["host"] for r in plan["rules"]] == ["ufw"]
    outside = {m["host"] for m in plan["manual"] if m["why"].endswith("is outside --limit ufw")}
    assert outside == FIXED - {"ufw"}
    assert plan["nothing"] is None


def test_a_limit_without_a_change_says_so():
    plan = op.plan_run(_report(), [], HOSTS, limit_pattern="healthy:dns", limit_hosts=["healthy", "dns"])
    assert plan["hosts"] == [] and plan["rules"] == []
    assert plan["nothing"].startswith("nothing to change: --limit healthy:dns leaves no host with a change from the report")
    assert "ufw" in plan["nothing"]


def test_the_same_plan_without_a_limit_as_before():
    assert op.plan_run(_report(), [], HOSTS)["rules"] == op.plan_from_report(_report(), HOSTS, HOSTS)["rules"]


def test_rules_without_a_report():
    rules = [{"backend": "ufw", "ports": ["80/tcp"]}, {"host": "fwd-nft", "backend": "firewalld", "ports": ["81/tcp"]}]
    plan = op.plan_run(None, rules, HOSTS, limit_pattern="ufw,dns", limit_hosts=["ufw", "dns"])
    assert [(r["host"], r["backend"], r["ports"]) for r in plan["rules"]] == [("ufw", "ufw", ["80/tcp"]), ("dns", "ufw", ["80/tcp"])]
    assert [(m["flow"], m["why"]) for m in plan["manual"]] == [("open_ports_rules[1]", "fwd-nft is outside --limit ufw,dns")]
    plan = op.plan_run(None, rules, HOSTS, hosts=["healthy", "fwd-nft"])
    assert [r["host"] for r in plan["rules"]] == ["healthy", "fwd-nft", "fwd-nft"]


@pytest.mark.parametrize("args,message", [
    ((None, [], HOSTS), "nothing to do: give open_ports_from_report"),
    ((None, [{"backend": "ufw", "ports": ["80/tcp"]}], HOSTS), "open_ports_rules[0] has no host"),
    ((None, [{"host": "ufw", "backend": "ufw", "ports": ["80/tcp"]}], HOSTS, ["nosuch"]), "open_ports_hosts: 'nosuch'"),
    ((None, [{"host": "nosuch", "backend": "ufw", "ports": ["80/tcp"]}], HOSTS), "host 'nosuch' is not a host"),
])
def test_bad_input_is_refused_naming_the_value(args, message):
    with pytest.raises(InputError) as err:
        op.plan_run(*args)
    assert message in str(err.value)


def _cloud_report(facts, cloud):
    flows = [seed_flow(facts, UFW, 80)]
    results = read(cloud, plan_lib.cloud_queries(plan_of(flows), hostvars(facts, ufw=settings(cloud["url"]))))
    return explain(attach(flows, results), facts["hosts"]), results


def test_a_security_group_fix_becomes_a_rule_for_the_destination_and_closes_the_loop(facts, cloud, ec2):
    report, _results = _cloud_report(facts, cloud)
    assert report["flows"][0]["cause"] == "security_group"
    plan = op.plan_run(report, [], HOSTS)
    assert plan["cloud"] == [{"host": "ufw", "provider": "aws", "kind": "security_group", "group_id": cloud["ssh_only"],
                              "acl_id": None, "egress": False, "before": None,
                              "protocol": "tcp", "port": "80", "icmp_type": None, "cidr": CLIENT + "/32",
                              "flow": "client -> ufw (10.200.2.17) 80/tcp"}]
    assert plan["hosts"] == ["ufw"] and not [m for m in plan["manual"] if m["cause"] == "security_group"]
    # applied as the role applies it (security_group_rule's library), the group allows the flow on the next read
    action = plan["cloud"][0]
    client, region = aws.connect(region="eu-west-1", endpoint_url=cloud["url"], access_key="testing", secret_key="testing")
    request = security_group.normalize_request(action["group_id"], action["protocol"], action["port"], cidr=action["cidr"])
    assert security_group.ensure(client, request, region)["changed"] is True
    assert security_group.ensure(client, request, region)["changed"] is False
    again, _results = _cloud_report(facts, cloud)
    f = again["flows"][0]
    assert f["cause"] != "security_group" and f["evidence"]["cloud"][0]["verdict"] == "accept"
    assert f["cause"] == "host_firewall" and "ufw" in json.dumps(f["culprit"])   # the next layer, now the culprit


def test_security_group_fix_outside_the_limit_is_manual(facts, cloud):
    report, _results = _cloud_report(facts, cloud)
    plan = op.plan_run(report, [], HOSTS, limit_pattern="healthy", limit_hosts=["healthy"])
    assert plan["cloud"] == [] and plan["nothing"]
    [entry] = [m for m in plan["manual"] if m["cause"] == "security_group"]
    assert entry["why"] == "ufw is outside --limit healthy"
    assert entry["commands"][0].startswith("aws ec2 authorize-security-group-ingress")


def test_a_network_acl_deny_becomes_an_entry_before_it_and_the_next_read_allows(facts, cloud, ec2):
    subnet = ec2.describe_subnets(Filters=[{"Name": "cidr-block", "Values": ["10.200.2.0/24"]}])["Subnets"][0]["SubnetId"]
    acl = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"][0]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=50, Protocol="6", RuleAction="deny", Egress=False,
                                 CidrBlock="0.0.0.0/0", PortRange={"From": 80, "To": 80})
    report, _results = _cloud_report(facts, cloud)
    plan = op.plan_run(report, [], HOSTS)
    [entry] = [a for a in plan["cloud"] if a["kind"] == "network_acl"]
    assert (entry["acl_id"], entry["egress"], entry["port"], entry["cidr"]) == (acl, False, "80", CLIENT + "/32")
    assert entry["before"] <= 50                        # below the deny that decides
    assert sorted(a["kind"] for a in plan["cloud"]) == ["network_acl", "security_group"]
    client, region = aws.connect(region="eu-west-1", endpoint_url=cloud["url"], access_key="testing", secret_key="testing")
    request = network_acl.normalize_request(acl, entry["protocol"], entry["port"], cidr=entry["cidr"], before=entry["before"])
    done = network_acl.ensure(client, request, region)
    assert done["changed"] is True and done["rule_number"] < 50
    assert network_acl.ensure(client, request, region)["changed"] is False
    again, _results = _cloud_report(facts, cloud)
    layers = [a["kind"] for a in op.plan_run(again, [], HOSTS)["cloud"]]
    assert layers == ["security_group"]                 # the ACL lets it in now; the group still does not


def test_other_providers_stay_manual(facts, cloud):
    report, _results = _cloud_report(facts, cloud)
    other = copy.deepcopy(report)
    other["flows"][0]["fix"]["cloud"][0]["provider"] = "gcp"
    plan = op.plan_run(other, [], HOSTS)
    assert plan["cloud"] == [] and "gcp security groups are changed by hand" in plan["manual"][-1]["why"]


# Alibaba Cloud: ufw's interface in an ECS group (fixtures/alicloud/seeds-ufw.json) with a Drop of 80/tcp from the
# front network at priority 10, replayed through the SDK by the server of the writer's tests (which applies the writes)

BACK = "sg-bp1back00000000001"


def _alicloud_report(facts, acct):
    flows = [seed_flow(facts, UFW, 80)]
    settings = {"provider": "alicloud", "region": "cn-hangzhou", "endpoint_url": acct.url}
    results = read(None, plan_lib.cloud_queries(plan_of(flows), hostvars(facts, ufw=settings)))
    return explain(attach(flows, results), facts["hosts"])


def test_an_alicloud_security_group_fix_is_applied_before_the_drop_and_closes_the_loop(facts, account):
    acct = account(fixture="seeds-ufw.json")
    report = _alicloud_report(facts, acct)
    assert report["flows"][0]["cause"] == "security_group"
    plan = op.plan_run(report, [], HOSTS)
    assert plan["cloud"] == [{"host": "ufw", "provider": "alicloud", "kind": "security_group", "group_id": BACK,
                              "acl_id": None, "egress": False, "before": None, "protocol": "tcp", "port": "80",
                              "icmp_type": None, "cidr": CLIENT + "/32", "priority": 9,
                              "flow": "client -> ufw (10.200.2.17) 80/tcp"}]
    assert plan["hosts"] == ["ufw"] and not [m for m in plan["manual"] if m["cause"] == "security_group"]
    # applied as the role applies it (security_group_rule's library), the group lets the flow in on the next read
    action = plan["cloud"][0]
    client = alicloud.Client(region="cn-hangzhou", endpoint_url=acct.url, access_key="testing", secret_key="testing")
    request = alicloud_security_group.normalize_request(action["group_id"], action["protocol"], action["port"],
                                                        cidr=action["cidr"], priority=action["priority"])
    assert alicloud_security_group.ensure(client, request)["changed"] is True
    assert [(a, q["Permissions.1.Priority"]) for a, q in acct.writes] == [("AuthorizeSecurityGroup", "9")]
    again = _alicloud_report(facts, acct)["flows"][0]
    assert again["cause"] != "security_group" and again["evidence"]["cloud"][0]["verdict"] == "accept"
    assert again["cause"] == "host_firewall"                  # the next layer, now the culprit


def test_an_alicloud_drop_at_priority_1_stays_manual_with_its_note(facts, account):
    acct = account(fixture="seeds-ufw.json")
    drop, = [r for r in acct.rules(BACK) if r["SecurityGroupRuleId"] == "sgr-bp1bdrp0000000001"]
    drop["Priority"] = 1
    plan = op.plan_run(_alicloud_report(facts, acct), [], HOSTS)
    assert plan["cloud"] == []
    entry, = [m for m in plan["manual"] if m["cause"] == "security_group"]
    assert entry["host"] == "ufw" and "the Drop rule sgr-bp1bdrp0000000001 has priority 1" in entry["why"]
