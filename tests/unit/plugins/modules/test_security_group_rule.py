# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""security_group_rule run as Ansible runs it (module file + ANSIBLE_MODULE_ARGS on stdin), against the moto
EC2 server on loopback: what describe-security-groups shows after each call is what is asserted; for provider
alicloud, against the ECS replay server (what it received, and the group it then holds)."""

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest

from .. import helpers

SECRET = "sg-rule-secret-that-must-not-leak"


def run_module(args, moto_url, check_mode=False):
    env = {"PATH": os.environ.get("PATH", ""), "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_EC2_METADATA_DISABLED": "true"}
    full = dict({"region": "eu-west-1", "endpoint_url": moto_url, "access_key": "AKIDTEST", "secret_key": SECRET}, **args)
    return helpers.run_module("security_group_rule", full, check_mode, env=env, raw=True)


@pytest.fixture
def group(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.1.0/24"}]}])
    return gid


def _ingress(ec2, gid):
    perms = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"]
    return sorted((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r.get("CidrIp") or r.get("CidrIpv6"))
                  for p in perms for r in (p.get("IpRanges") or []) + (p.get("Ipv6Ranges") or []))


def test_check_mode_then_add_then_nothing_to_do(ec2, moto_url, group):
    before = _ingress(ec2, group)
    args = {"group_id": group, "port": "80", "source": "10.0.1.10"}
    result, raw = run_module(args, moto_url, check_mode=True)
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is True and result["msg"].startswith("would allow 80/tcp from 10.0.1.10/32")
    assert "ingress tcp 80 from 10.0.1.10/32" in result["rules"]["after"]
    assert "ingress tcp 80 from 10.0.1.10/32" not in result["diff"]["before"] and \
        "ingress tcp 80 from 10.0.1.10/32" in result["diff"]["after"]
    assert _ingress(ec2, group) == before, "check mode changed the group"

    result, raw = run_module(args, moto_url)
    assert result["changed"] is True, result.get("msg")
    assert _ingress(ec2, group) == sorted(before + [("tcp", 80, 80, "10.0.1.10/32")])
    assert result["command"].startswith("aws ec2 authorize-security-group-ingress --region eu-west-1 --group-id " + group)
    assert SECRET not in raw

    again, _raw = run_module(args, moto_url)
    assert again["changed"] is False and "already allows 80/tcp from 10.0.1.10/32" in again["msg"]
    assert again["api"] is None and _ingress(ec2, group) == sorted(before + [("tcp", 80, 80, "10.0.1.10/32")])


def test_absent_revokes_only_that_rule(ec2, moto_url, group):
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.1.10/32"}, {"CidrIp": "10.0.1.11/32"}]}])
    args = {"group_id": group, "protocol": "udp", "port": "53", "source": "10.0.1.11", "state": "absent"}
    result, _raw = run_module(args, moto_url, check_mode=True)
    assert result["changed"] is True and ("udp", 53, 53, "10.0.1.11/32") in _ingress(ec2, group)
    result, _raw = run_module(args, moto_url)
    assert result["changed"] is True
    assert _ingress(ec2, group) == [("tcp", 22, 22, "10.0.1.0/24"), ("udp", 53, 53, "10.0.1.10/32")]
    result, _raw = run_module(args, moto_url)
    assert result["changed"] is False


def test_ipv6_source_is_a_128_and_a_range_of_ports(ec2, moto_url, group):
    result, _raw = run_module({"group_id": group, "port": "8000-8010", "source": "2001:db8::5"}, moto_url)
    assert result["changed"] is True, result.get("msg")
    assert ("tcp", 8000, 8010, "2001:db8::5/128") in _ingress(ec2, group)


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_anywhere_is_refused_without_allow_anywhere(ec2, moto_url, group, cidr):
    before = _ingress(ec2, group)
    result, _raw = run_module({"group_id": group, "port": "80", "cidr": cidr}, moto_url)
    assert result["failed"] is True and result["changed"] is False
    assert "refusing to allow 80/tcp from anywhere (%s)" % cidr in result["msg"] and "allow_anywhere" in result["msg"]
    assert _ingress(ec2, group) == before
    result, _raw = run_module({"group_id": group, "port": "80", "cidr": cidr, "allow_anywhere": True}, moto_url)
    assert result["changed"] is True, result.get("msg")
    assert ("tcp", 80, 80, cidr) in _ingress(ec2, group)


@pytest.mark.parametrize("args,message", [
    ({"group_id": "web", "port": "80", "source": "10.0.1.10"}, "invalid group_id 'web'"),
    ({"port": "99999", "source": "10.0.1.10"}, "invalid port '99999'"),
    ({"port": "80", "source": "10.0.1.999"}, "invalid source '10.0.1.999'"),
    ({"port": "80", "cidr": "10.0.1.5/24"}, "invalid cidr '10.0.1.5/24'"),
    ({"source": "10.0.1.10"}, "invalid port None"),
    ({"protocol": "icmp", "icmp_type": 300, "source": "10.0.1.10"}, "invalid icmp_type 300"),
    ({"group_id": "sg-0000000000000dead", "port": "80", "source": "10.0.1.10"}, "security group sg-0000000000000dead not found"),
])
def test_bad_input_names_the_value_and_changes_nothing(ec2, moto_url, group, args, message):
    before = _ingress(ec2, group)
    result, _raw = run_module(dict({"group_id": group}, **args), moto_url)
    assert result["failed"] is True and message in result["msg"], result["msg"]
    assert _ingress(ec2, group) == before


def test_icmp_echo_from_one_address(ec2, moto_url, group):
    result, _raw = run_module({"group_id": group, "protocol": "icmp", "source": "10.0.1.10"}, moto_url)
    assert result["changed"] is True, result.get("msg")
    assert ("icmp", 8, -1, "10.0.1.10/32") in _ingress(ec2, group)


# ---------------------------------------------------------------- provider alicloud: the SDK against the replay server
# (tests/unit/fixtures/alicloud; the server applies the writes to its copy of the groups, see Account)

ALI_SECRET = "ali-secret-that-must-not-leak"
WEB = "sg-bp1web000000000001"


def run_alicloud(acct, args, check_mode=False, env=None):
    full = dict({"provider": "alicloud", "region": "cn-hangzhou", "endpoint_url": acct.url, "access_key": "LTAI-test-key",
                 "secret_key": ALI_SECRET, "group_id": WEB}, **args)
    return helpers.run_module("security_group_rule", full, check_mode, env=env or {"PATH": os.environ.get("PATH", "")}, raw=True)


@pytest.fixture
def account(stub_server):
    pytest.importorskip("alibabacloud_ecs20140526", reason="the Alibaba Cloud SDK is needed (requirements/cloud.txt)")
    from ..module_utils.fix.test_alicloud_security_group import Account

    def start(**kw):
        acct = Account(**kw)
        acct.server = stub_server(acct)
        acct.url = acct.server.url
        return acct
    return start


def test_alicloud_check_mode_then_add_then_nothing_to_do(account):
    acct = account()
    before = acct.ingress(WEB)
    args = {"port": "80", "source": "198.51.100.9"}
    result, raw = run_alicloud(acct, args, check_mode=True)
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is True and result["msg"] == "would allow 80/tcp from 198.51.100.9/32 in %s at priority 9" % WEB
    assert acct.writes == [] and acct.ingress(WEB) == before, "check mode wrote"
    line = "ingress priority 9 accept tcp 80 from 198.51.100.9/32"
    assert line not in result["diff"]["before"] and line in result["diff"]["after"]
    assert result["rules"]["after"] == sorted(result["rules"]["before"] + [line], key=result["rules"]["after"].index)

    result, raw = run_alicloud(acct, args)
    assert result["changed"] is True, result.get("msg")
    (action, query), = acct.writes
    assert action == "AuthorizeSecurityGroup"
    assert {k: v for k, v in query.items() if k.startswith("Permissions.")} == {
        "Permissions.1.Policy": "accept", "Permissions.1.Priority": "9", "Permissions.1.IpProtocol": "TCP",
        "Permissions.1.PortRange": "80/80", "Permissions.1.SourceCidrIp": "198.51.100.9/32",
        "Permissions.1.Description": "netdiag: allow 80/tcp from 198.51.100.9/32"}
    assert (query["SecurityGroupId"], query["RegionId"]) == (WEB, "cn-hangzhou")
    assert (9, "accept", "tcp", "80/80", "198.51.100.9/32") in acct.ingress(WEB)
    assert result["api"]["operation"] == "AuthorizeSecurityGroup" and result["rule"]["priority"] == 9
    assert ALI_SECRET not in raw

    again, raw = run_alicloud(acct, args)
    assert again["changed"] is False and again["api"] is None, again["msg"]
    assert again["msg"] == "%s already allows 80/tcp from 198.51.100.9/32 at priority 9" % WEB
    assert len(acct.writes) == 1, "the second run wrote"


def test_alicloud_absent_revokes_the_same_permission(account):
    acct = account()
    result, raw = run_alicloud(acct, {"port": "80", "source": "198.51.100.7", "state": "absent"})
    assert result["changed"] is True, result.get("msg")
    (action, query), = acct.writes
    assert action == "RevokeSecurityGroup" and query["Permissions.1.SourceCidrIp"] == "198.51.100.7/32"
    assert (query["Permissions.1.Policy"], query["Permissions.1.Priority"], query["Permissions.1.PortRange"]) == ("accept", "10", "80/80")
    assert not [r for r in acct.ingress(WEB) if r[4] == "198.51.100.7/32"]


def test_alicloud_anywhere_is_refused(account):
    acct = account()
    result, raw = run_alicloud(acct, {"port": "80", "cidr": "0.0.0.0/0"})
    assert result["failed"] is True and result["changed"] is False
    assert "refusing to allow 80/tcp from anywhere (0.0.0.0/0) in %s" % WEB in result["msg"] and "allow_anywhere" in result["msg"]
    assert acct.server.requests == []


@pytest.mark.parametrize("args,errors,message", [
    ({"group_id": "sg-bp9nope000000000009"}, None, "security group sg-bp9nope000000000009 not found in region cn-hangzhou"),
    ({}, {"*": ["InvalidAccessKeyId.NotFound"]}, "Alibaba Cloud rejected the credentials (InvalidAccessKeyId.NotFound)"),
    ({"priority": 101}, None, "invalid priority 101 (expected 1-100"),
    ({"profile": "audit"}, None, "profile 'audit' is for provider aws"),
])
def test_alicloud_failures_are_clear_and_change_nothing(account, args, errors, message):
    acct = account(errors=errors)
    before = copy.deepcopy(acct.groups)
    result, raw = run_alicloud(acct, dict({"port": "80", "source": "10.1.2.3"}, **args))
    assert result["failed"] is True and message in result["msg"], result["msg"]
    assert result["changed"] is False and acct.writes == [] and acct.groups == before
    assert ALI_SECRET not in raw


def test_priority_is_refused_for_aws():
    args = {"group_id": "sg-0123456789abcdef0", "port": "80", "source": "10.0.1.10", "priority": 9}
    result = helpers.run_module("security_group_rule", args, env={"PATH": os.environ.get("PATH", "")})
    assert result["failed"] is True and "priority 9 is for provider alicloud" in result["msg"]


def test_alicloud_without_the_sdk_fails_naming_the_package(tmp_path):
    fake = tmp_path / "alibabacloud_ecs20140526"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('No module named alibabacloud_ecs20140526 (hidden by the test)')\n")
    # the fake package comes first on the module's path (PYTHONPATH: it, then the collection)
    prefix = ["env", "PYTHONPATH=%s:%s" % (tmp_path, os.path.join(helpers.ROOT, ".collections"))]
    result = helpers.run_module("security_group_rule", {"provider": "alicloud", "region": "cn-hangzhou", "group_id": WEB,
                                                        "port": "80", "source": "10.1.2.3", "access_key": "LTAI-test-key",
                                                        "secret_key": ALI_SECRET},
                                env={"PATH": os.environ.get("PATH", "")}, prefix=prefix)
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("the Alibaba Cloud ECS SDK is required but not available (install alibabacloud_ecs20140526 "
                                    "and alibabacloud_tea_openapi (pip install alibabacloud_ecs20140526)): needed for provider alicloud")
    assert "exception" not in result


def test_ansible_doc_documents_the_alicloud_options():
    ansible_doc = shutil.which("ansible-doc", path=os.path.dirname(sys.executable)) or shutil.which("ansible-doc")
    if ansible_doc is None:
        pytest.skip("ansible-doc is not installed")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(helpers.ROOT, ".collections"))
    proc = subprocess.run([ansible_doc, "--json", "netdiag.reachability.security_group_rule"], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["netdiag.reachability.security_group_rule"]
    options = doc["doc"]["options"]
    assert options["provider"]["choices"] == ["aws", "alicloud"] and options["provider"]["default"] == "aws"
    assert options["priority"]["type"] == "int"
    for name, env_var in (("region", "ALIBABA_CLOUD_REGION_ID"), ("access_key", "ALIBABA_CLOUD_ACCESS_KEY_ID"),
                          ("secret_key", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"), ("session_token", "ALIBABA_CLOUD_SECURITY_TOKEN")):
        assert env_var in " ".join(options[name]["description"]), name
        assert options[name]["type"] == "str" and options[name]["aliases"], name   # the rest from the aws fragment
    assert "security_token" in options["session_token"]["aliases"]
    assert "provider: alicloud" in doc["examples"]
    for key in ("msg", "group", "rule", "api", "command", "rules", "diff"):
        assert doc["return"][key]["returned"] == "always"
