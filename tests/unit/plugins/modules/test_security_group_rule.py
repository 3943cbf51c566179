# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""security_group_rule run as Ansible runs it (module file + ANSIBLE_MODULE_ARGS on stdin), against the moto
EC2 server on loopback: what describe-security-groups shows after each call is what is asserted."""

import os

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
