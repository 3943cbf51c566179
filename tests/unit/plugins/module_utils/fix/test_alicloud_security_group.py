# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fix/alicloud_security_group: the Alibaba Cloud security-group writer, through the official SDK against a loopback
server that replays the ECS API (tests/unit/fixtures/alicloud, see its README) and applies the writes to its copy of
the groups, so that the next DescribeSecurityGroupAttribute shows them.  What is asserted is what the server received
(the exact query of each write) and what the group holds afterwards."""

import copy

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import alicloud
from ansible_collections.netdiag.reachability.plugins.module_utils.fix import alicloud_security_group as sg
from ansible_collections.netdiag.reachability.plugins.module_utils.fix.security_group import RuleTooWide
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    BackendUnavailable, InputError, MissingDependency,
)

from ..cloud.test_alicloud import Replay, _json, error, query_of
from ...helpers import load_json

pytest.importorskip("alibabacloud_ecs20140526", reason="the Alibaba Cloud SDK is needed (requirements/cloud.txt)")

WEB = "sg-bp1web000000000001"
EXTRA = "sg-bp2extra0000000002"
WRITES = ("AuthorizeSecurityGroup", "RevokeSecurityGroup", "ModifySecurityGroupRule")


def _identity(perm):
    """How ECS tells rules apart (the API reference of AuthorizeSecurityGroup / RevokeSecurityGroup): protocol,
    port range, source and policy - not the priority."""
    return (str(perm.get("IpProtocol")).lower(), perm.get("PortRange"),
            perm.get("SourceCidrIp") or perm.get("Ipv6SourceCidrIp"), str(perm.get("Policy") or "accept").lower())


class Account(Replay):
    """The replay server plus its own copy of the fixture's groups: AuthorizeSecurityGroup adds the permission (or
    nothing when the same rule exists, at whatever priority), RevokeSecurityGroup removes the rule with the same
    permission, ModifySecurityGroupRule sets the priority of the rule it names.  This emulation is the test's, written
    from the API reference; the answers are writes.json's.  ``writes`` lists ``(action, query)`` of every write;
    with ``apply=False`` the writes are answered and not applied (an API that loses them)."""

    def __init__(self, fixture="web01.json", errors=None, apply=True):
        super().__init__(fixture, errors)
        self.apply = apply
        self.groups = {e["query"]["SecurityGroupId"]: copy.deepcopy(e["body"])
                       for e in self.responses if e["action"] == "DescribeSecurityGroupAttribute"}
        self.writes = []
        self.answers = load_json("alicloud", "writes.json")

    def rules(self, group_id):
        return self.groups[group_id]["Permissions"]["Permission"]

    def ingress(self, group_id):
        """(priority, policy, protocol, port range, source) of each ingress rule, sorted."""
        return sorted((int(p["Priority"]), p["Policy"].lower(), p["IpProtocol"].lower(), p["PortRange"],
                       p["SourceCidrIp"] or p["Ipv6SourceCidrIp"] or p["SourceGroupId"])
                      for p in self.rules(group_id) if p["Direction"] == "ingress")

    def __call__(self, method, path, headers, body):
        action = headers.get("x-acs-action")
        query = query_of(path, body)
        if action in WRITES:
            self.writes.append((action, query))
        if action not in WRITES + ("DescribeSecurityGroupAttribute",) or self.errors.get(action) or self.errors.get("*"):
            return super().__call__(method, path, headers, body)
        if query.get("SecurityGroupId") not in self.groups:
            return error("InvalidSecurityGroupId.NotFound")
        group = self.groups[query["SecurityGroupId"]]
        perms = group["Permissions"]["Permission"]
        if action == "DescribeSecurityGroupAttribute":
            return _json(200, group)
        given = {k[len("Permissions.1."):]: v for k, v in query.items() if k.startswith("Permissions.1.")}
        if not self.apply:
            pass
        elif action == "AuthorizeSecurityGroup" and not any(_identity(p) == _identity(given) for p in perms if p["Direction"] == "ingress"):
            perm = {k: "" for k in perms[0]}
            perm.update(given, SecurityGroupRuleId="sgr-bp1new%011d" % len(self.writes), Direction="ingress",
                        Policy=given.get("Policy", "accept").capitalize(), Priority=int(given.get("Priority", 1)),
                        NicType="intranet", CreateTime="2026-03-03T10:00:00Z")
            perms.append(perm)
        elif action == "RevokeSecurityGroup":
            perms[:] = [p for p in perms if p["Direction"] != "ingress" or _identity(p) != _identity(given)]
        elif action == "ModifySecurityGroupRule":
            rule, = [p for p in perms if p["SecurityGroupRuleId"] == query["SecurityGroupRuleId"]]
            rule["Priority"] = int(query["Priority"])
        return _json(200, self.answers[action])


@pytest.fixture
def account(stub_server):
    def start(**kw):
        acct = Account(**kw)
        acct.server = stub_server(acct)
        acct.url = acct.server.url
        return acct
    return start


def client(acct, **kw):
    kw.setdefault("region", "cn-hangzhou")
    kw.setdefault("access_key", "LTAI-test-key")
    kw.setdefault("secret_key", "test-secret")
    return alicloud.Client(endpoint_url=acct.url, retry_delay=0.01, permissions=sg.PERMISSIONS, **kw)


def ensure(acct, check_mode=False, **request):
    request.setdefault("group_id", WEB)
    request.setdefault("protocol", "tcp")
    return sg.ensure(client(acct), sg.normalize_request(**request), check_mode=check_mode)


def test_adds_the_accept_rule_one_before_the_drop_and_then_has_nothing_to_do(account):
    acct = account()
    result = ensure(acct, port="80", source="198.51.100.9")
    assert result["changed"] is True
    assert result["msg"] == "allowed 80/tcp from 198.51.100.9/32 in %s at priority 9" % WEB
    (action, query), = acct.writes
    assert action == "AuthorizeSecurityGroup"
    assert query == {"RegionId": "cn-hangzhou", "SecurityGroupId": WEB, "Permissions.1.Policy": "accept",
                     "Permissions.1.Priority": "9", "Permissions.1.IpProtocol": "TCP", "Permissions.1.PortRange": "80/80",
                     "Permissions.1.SourceCidrIp": "198.51.100.9/32",
                     "Permissions.1.Description": "netdiag: allow 80/tcp from 198.51.100.9/32"}
    assert (9, "accept", "tcp", "80/80", "198.51.100.9/32") in acct.ingress(WEB)
    assert "ingress priority 9 accept tcp 80 from 198.51.100.9/32" in result["rules"]["after"]
    assert "ingress priority 9 accept tcp 80 from 198.51.100.9/32" not in result["rules"]["before"]
    assert result["rule"]["priority"] == 9 and result["group"] == {"id": WEB, "name": "web", "vpc_id": "vpc-bp1main000000000001"}
    assert result["command"].startswith("aliyun ecs AuthorizeSecurityGroup --RegionId cn-hangzhou --SecurityGroupId %s "
                                        "--Permissions.1.Policy accept --Permissions.1.Priority 9 " % WEB)

    again = ensure(acct, port="80", source="198.51.100.9")
    assert again["changed"] is False and again["api"] is None and again["command"] is None
    assert again["msg"] == "%s already allows 80/tcp from 198.51.100.9/32 at priority 9" % WEB
    assert len(acct.writes) == 1, "the second run wrote"


def test_the_rules_are_listed_in_the_order_ecs_tries_them(account):
    acct = account()
    before = ensure(acct, port="22", source="10.1.2.3")["rules"]["before"]
    assert before == ["ingress priority 1 accept tcp 22 from 10.0.0.0/8",
                      "ingress priority 5 accept tcp 8080 from group sg-bp3app000000000003",
                      "ingress priority 10 drop tcp 80 from 198.51.100.0/24",     # Drop first at equal priority
                      "ingress priority 10 accept tcp 80 from 198.51.100.7/32",
                      "ingress priority 50 accept tcp 80 from 0.0.0.0/0"]


def test_check_mode_calls_no_write_and_predicts_the_diff(account):
    acct = account()
    before = acct.ingress(WEB)
    result = ensure(acct, check_mode=True, port="8000-8010", source="203.0.113.5")
    assert result["changed"] is True and acct.writes == [] and acct.ingress(WEB) == before
    assert result["msg"] == "would allow 8000-8010/tcp from 203.0.113.5/32 in %s at priority 100" % WEB
    line = "ingress priority 100 accept tcp 8000-8010 from 203.0.113.5/32\n"
    assert line not in result["diff"]["before"] and line in result["diff"]["after"]
    assert result["diff"]["after"].startswith("security group %s (web) in vpc-bp1main000000000001\n" % WEB)
    assert result["api"]["params"]["Permissions"][0]["PortRange"] == "8000/8010"


def test_the_same_rule_at_another_priority_is_moved_not_added_again(account):
    # web has Accept 80/tcp from 198.51.100.7/32 at priority 10, beaten by the Drop of the /24 at the same priority:
    # ECS would take an AuthorizeSecurityGroup of it at priority 9 for the existing rule and add nothing
    acct = account()
    result = ensure(acct, port="80", source="198.51.100.7")
    assert result["changed"] is True
    assert result["msg"] == "moved the rule allowing 80/tcp from 198.51.100.7/32 in %s from priority 10 to 9" % WEB
    (action, query), = acct.writes
    assert (action, query) == ("ModifySecurityGroupRule", {"RegionId": "cn-hangzhou", "SecurityGroupId": WEB,
                                                           "SecurityGroupRuleId": "sgr-bp1acc00000000001", "Priority": "9"})
    assert (9, "accept", "tcp", "80/80", "198.51.100.7/32") in acct.ingress(WEB)
    assert ensure(acct, port="80", source="198.51.100.7")["changed"] is False and len(acct.writes) == 1


def test_remove_revokes_the_same_permission(account):
    acct = account()
    result = ensure(acct, port="80", source="198.51.100.7", state="absent")
    assert result["changed"] is True and result["msg"] == "stopped allowing 80/tcp from 198.51.100.7/32 in %s at priority 10" % WEB
    (action, query), = acct.writes
    assert action == "RevokeSecurityGroup"
    assert query == {"RegionId": "cn-hangzhou", "SecurityGroupId": WEB, "Permissions.1.Policy": "accept",
                     "Permissions.1.Priority": "10", "Permissions.1.IpProtocol": "TCP", "Permissions.1.PortRange": "80/80",
                     "Permissions.1.SourceCidrIp": "198.51.100.7/32"}
    assert not [r for r in acct.ingress(WEB) if r[4] == "198.51.100.7/32"]
    again = ensure(acct, port="80", source="198.51.100.7", state="absent")
    assert again["changed"] is False and again["msg"] == "%s has no rule for 80/tcp from 198.51.100.7/32" % WEB
    assert len(acct.writes) == 1


def test_remove_at_a_priority_leaves_the_rule_at_another(account):
    acct = account()
    result = ensure(acct, port="80", source="198.51.100.7", state="absent", priority=20)
    assert result["changed"] is False and acct.writes == []
    assert (10, "accept", "tcp", "80/80", "198.51.100.7/32") in acct.ingress(WEB)


def test_ipv6_and_icmp(account):
    acct = account()
    ensure(acct, port="443", source="2001:db8::5")
    ensure(acct, protocol="icmp", cidr="10.1.0.0/16")
    (a1, q1), (a2, q2) = acct.writes
    assert q1["Permissions.1.Ipv6SourceCidrIp"] == "2001:db8::5/128" and "Permissions.1.SourceCidrIp" not in q1
    assert (q2["Permissions.1.IpProtocol"], q2["Permissions.1.PortRange"], q2["Permissions.1.Priority"]) == ("ICMP", "-1/-1", "100")
    assert q2["Permissions.1.Description"] == "netdiag: allow icmp from 10.1.0.0/16"
    with pytest.raises(InputError, match=r"icmp_type 8: an Alibaba Cloud security group rule matches every ICMP type"):
        ensure(acct, protocol="icmp", icmp_type=8, source="10.1.2.3")


def test_a_drop_at_priority_1_cannot_be_beaten(account):
    acct = account()
    with pytest.raises(InputError, match=r"the Drop rule sgr-bp2db000000000001 of %s has priority 1 and matches 3306/tcp "
                                         r"from 10\.1\.2\.3/32: no Accept rule can be tried before it" % EXTRA):
        ensure(acct, group_id=EXTRA, port="3306", source="10.1.2.3")
    assert acct.writes == []


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_anywhere_is_refused_before_anything_is_called(cidr):
    with pytest.raises(RuleTooWide, match=r"refusing to allow 80/tcp from anywhere \(%s\) in %s.*allow_anywhere" % (cidr, WEB)):
        sg.normalize_request(WEB, "tcp", "80", cidr=cidr)
    assert sg.normalize_request(WEB, "tcp", "80", cidr=cidr, allow_anywhere=True)["cidr"] == cidr


@pytest.mark.parametrize("priority", [0, 101, True, "9"])
def test_bad_priority_names_the_value(priority):
    with pytest.raises(InputError, match=r"invalid priority %r \(expected 1-100" % (priority,)):
        sg.normalize_request(WEB, "tcp", "80", source="10.1.2.3", priority=priority)


def test_unknown_group(account):
    acct = account()
    with pytest.raises(InputError, match=r"security group sg-bp9nope000000000009 not found in region cn-hangzhou "
                                         r"\(.*InvalidSecurityGroupId.NotFound"):
        ensure(acct, group_id="sg-bp9nope000000000009", port="80", source="10.1.2.3")
    assert acct.writes == []


def test_rejected_credentials_and_denied_permissions(account):
    acct = account(errors={"*": ["InvalidAccessKeyId.NotFound"]})
    with pytest.raises(BackendUnavailable, match=r"Alibaba Cloud rejected the credentials \(InvalidAccessKeyId.NotFound\) "
                                                 r"calling ecs:DescribeSecurityGroupAttribute"):
        ensure(acct, port="80", source="10.1.2.3")
    acct = account(errors={"AuthorizeSecurityGroup": ["Forbidden.RAM"]})
    with pytest.raises(BackendUnavailable, match=r"permission denied for ecs:AuthorizeSecurityGroup .*this module needs "
                                                 r"ecs:DescribeSecurityGroupAttribute, ecs:AuthorizeSecurityGroup"):
        ensure(acct, port="80", source="10.1.2.3")


def test_throttling_is_retried_as_the_reader_does(account):
    acct = account(errors={"AuthorizeSecurityGroup": ["Throttling.User", "Throttling.User"]})
    assert ensure(acct, port="80", source="10.1.2.3")["changed"] is True
    assert [a for a, q in acct.writes] == ["AuthorizeSecurityGroup"] * 3   # two throttled, then the one that counts
    assert (100, "accept", "tcp", "80/80", "10.1.2.3/32") in acct.ingress(WEB)


def test_a_write_the_group_does_not_show_fails(account):
    acct = account(apply=False)
    with pytest.raises(BackendUnavailable, match=r"%s: Alibaba Cloud accepted AuthorizeSecurityGroup but the group does not "
                                                 r"show the change" % WEB):
        ensure(acct, port="80", source="10.1.2.3")
    assert [a for a, q in acct.writes] == ["AuthorizeSecurityGroup"]


def test_missing_sdk(account, monkeypatch):
    acct = account()
    monkeypatch.setattr(alicloud, "HAS_SDK", False)
    with pytest.raises(MissingDependency, match="alibabacloud_ecs20140526"):
        client(acct)
