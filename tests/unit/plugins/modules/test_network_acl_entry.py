# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""network_acl_entry run as Ansible runs it, against the moto EC2 server on loopback: the allow goes right before
the deny that decides (describe-network-acls shows it), check mode changes nothing, a second run nothing."""

import os

import pytest

from .. import helpers


def run_module(args, moto_url, check_mode=False):
    env = {"PATH": os.environ.get("PATH", ""), "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_EC2_METADATA_DISABLED": "true"}
    full = dict({"region": "eu-west-1", "endpoint_url": moto_url, "access_key": "AKIDTEST", "secret_key": "netdiag-acl-test-secret"}, **args)
    return helpers.run_module("network_acl_entry", full, check_mode, env=env)


@pytest.fixture
def acl(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    acl_id = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=100, Protocol="6", RuleAction="deny", Egress=False,
                                 CidrBlock="0.0.0.0/0", PortRange={"From": 80, "To": 80})
    ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=99, Protocol="6", RuleAction="allow", Egress=False,
                                 CidrBlock="10.0.9.0/24", PortRange={"From": 443, "To": 443})
    return acl_id


def _entries(ec2, acl_id):
    acl = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]
    return sorted((e["RuleNumber"], e["RuleAction"], e.get("CidrBlock"), (e.get("PortRange") or {}).get("From"))
                  for e in acl["Entries"] if not e["Egress"])


def test_the_allow_goes_before_the_deny_check_mode_first_then_idempotent(ec2, moto_url, acl):
    before = _entries(ec2, acl)
    args = {"network_acl_id": acl, "port": "80", "source": "10.0.1.10", "before": 100}
    result = run_module(args, moto_url, check_mode=True)
    assert result["changed"] is True and result["rule_number"] == 98, result.get("msg")   # 99 is taken
    assert "ingress 98 tcp 80 from 10.0.1.10/32 allow" in result["entries"]["after"]
    assert _entries(ec2, acl) == before, "check mode changed the ACL"
    result = run_module(args, moto_url)
    assert result["changed"] is True and result["msg"] == "added rule 98 of %s: allow tcp 80 from 10.0.1.10/32" % acl
    assert _entries(ec2, acl) == sorted(before + [(98, "allow", "10.0.1.10/32", 80)])
    again = run_module(args, moto_url)
    assert again["changed"] is False and _entries(ec2, acl) == sorted(before + [(98, "allow", "10.0.1.10/32", 80)])
    gone = run_module(dict(args, state="absent"), moto_url)
    assert gone["changed"] is True and _entries(ec2, acl) == before


def test_anywhere_and_bad_input_are_refused(ec2, moto_url, acl):
    before = _entries(ec2, acl)
    result = run_module({"network_acl_id": acl, "port": "80", "cidr": "0.0.0.0/0", "before": 100}, moto_url)
    assert result["failed"] is True and "refusing to allow 80/tcp from anywhere (0.0.0.0/0) in %s" % acl in result["msg"]
    for args, message in (({"network_acl_id": "sg-1", "port": "80", "source": "10.0.1.10"}, "invalid network_acl_id 'sg-1'"),
                          ({"network_acl_id": acl, "port": "80", "source": "10.0.1.10", "before": 1}, "invalid before 1"),
                          ({"network_acl_id": "acl-00000000000000dead", "port": "80", "source": "10.0.1.10"}, "network ACL acl-00000000000000dead not found")):
        result = run_module(args, moto_url)
        assert result["failed"] is True and message in result["msg"], result["msg"]
    assert _entries(ec2, acl) == before
