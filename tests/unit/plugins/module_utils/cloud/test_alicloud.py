# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""security_group_info for Alibaba Cloud ECS: the official SDK talks to a loopback server that
replays responses in the ECS API's shape (tests/unit/fixtures/alicloud, see its README)."""

import json
import urllib.parse

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import alicloud
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud.evaluate import security_group_info
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    BackendUnavailable, InputError, MissingDependency,
)

from ...helpers import load_json

pytest.importorskip("alibabacloud_ecs20140526", reason="the Alibaba Cloud SDK is needed (requirements/cloud.txt)")

WEB = "sg-bp1web000000000001"
EXTRA = "sg-bp2extra0000000002"
ENI = "eni-bp1web000000000001"


def _json(status, body):
    return status, {"Content-Type": "application/json;charset=utf-8"}, json.dumps(body).encode()


def query_of(path, body):
    """The parameters of a request as the SDK sent them (in the URL's query and the form body)."""
    query = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).items()}
    query.update({k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()})
    return query


def error(name):
    """The answer of errors.json's ``name``."""
    err = load_json("alicloud", "errors.json")[name]
    return _json(err["status"], err["body"])


class Replay:
    def __init__(self, fixture="web01.json", errors=None):
        self.responses = load_json("alicloud", fixture)["responses"]
        self.errors = errors or {}  # action -> [error name, ...] served before the real answer
        self.unmatched = []

    def __call__(self, method, path, headers, body):
        action = headers.get("x-acs-action")
        query = query_of(path, body)
        queue = self.errors.get(action) or self.errors.get("*")
        if queue:
            return error(queue.pop(0))
        for entry in self.responses:
            if entry["action"] == action and all(query.get(k) == v for k, v in entry["query"].items()):
                return _json(200, entry["body"])
        self.unmatched.append((action, query))
        return _json(400, {"Code": "NetdiagReplay.NoFixture", "Message": "no fixture for %s %s" % (action, query),
                           "RequestId": "0"})


@pytest.fixture
def replay(stub_server):
    def start(**kw):
        rp = Replay(**kw)
        server = stub_server(rp)
        rp.url = server.url
        rp.server = server
        return rp
    return start


def info(rp, **kw):
    kw.setdefault("region", "cn-hangzhou")
    kw.setdefault("access_key", "LTAI-test-key")
    kw.setdefault("secret_key", "test-secret")
    return security_group_info("alicloud", endpoint_url=rp.url, retry_delay=0.01, **kw)


def tcp(src, dport, dst="172.16.0.10", **kw):
    pkt = {"proto": "tcp", "src": src, "dst": dst, "dport": dport}
    pkt.update(kw)
    return pkt


def verdicts(rp, *packets, **kw):
    result = info(rp, packets=list(packets), **kw)
    assert rp.unmatched == []
    return result["verdicts"]


def test_reads_the_interface_and_both_groups_through_the_sdk(replay):
    rp = replay()
    result = info(rp, addresses=["172.16.0.10"])
    iface, = result["interfaces"]
    assert iface["id"] == ENI and iface["instance_id"] == "i-bp1web000000000001"
    assert iface["public_addresses"] == ["47.96.10.20"]
    assert iface["security_groups"] == [{"id": WEB, "name": "web"}, {"id": EXTRA, "name": "extra"}]
    ingress = next(c for c in iface["ruleset"]["tables"][0]["chains"] if c["name"] == "ingress")
    order = [(r["origin"]["priority"], r["origin"]["policy"]) for r in ingress["rules"][1:] if r["origin"]["priority"]]
    assert order == sorted(order, key=lambda o: (o[0], o[1] != "drop"))  # priority, then Drop first
    # the requests really went through the SDK: signed, with the action in the header
    assert all(r["headers"].get("Authorization", "").startswith("ACS3-HMAC-SHA256 Credential=LTAI-test-key")
               for r in rp.server.requests)


def test_drop_beats_accept_at_equal_priority(replay):
    rp = replay()
    v, = verdicts(rp, tcp("198.51.100.7", 80))
    assert v["verdict"] == "drop" and v["layer"] == "security_group"
    assert (v["rule"]["rule_id"], v["rule"]["priority"], v["rule"]["policy"]) == ("sgr-bp1drp00000000001", 10, "drop")
    assert "sgr-bp1drp00000000001" in v["reason"]
    fix = v["fix"]
    assert fix["rule"]["priority"] == 9 and fix["target"] == WEB
    assert fix["api"]["params"]["Permissions"] == [{
        "Policy": "accept", "Priority": 9, "IpProtocol": "TCP", "PortRange": "80/80", "SourceCidrIp": "198.51.100.7/32",
        "Description": "netdiag: allow 80/tcp from 198.51.100.7/32"}]
    assert fix["command"].startswith("aliyun ecs AuthorizeSecurityGroup --RegionId cn-hangzhou --SecurityGroupId %s " % WEB)
    assert "--Permissions.1.Priority 9" in fix["command"] and "--Permissions.1.PortRange 80/80" in fix["command"]


def test_lower_priority_number_wins_across_groups(replay):
    rp = replay()
    blocked, open_, other = verdicts(rp, tcp("192.0.2.5", 80), tcp("203.0.113.5", 80), tcp("198.51.100.9", 80))
    # extra's priority-30 Drop is tried before web's priority-50 Accept
    assert blocked["verdict"] == "drop" and blocked["rule"]["rule_id"] == "sgr-bp2blk00000000001"
    assert blocked["rule"]["group_id"] == EXTRA
    # web's priority-50 Accept is tried before extra's priority-60 Drop
    assert open_["verdict"] == "accept" and open_["rule"]["rule_id"] == "sgr-bp1www00000000001"
    assert other["verdict"] == "drop" and other["rule"]["rule_id"] == "sgr-bp1drp00000000001"


def test_default_deny_and_a_drop_no_accept_can_beat(replay):
    rp = replay()
    smtp, mysql = verdicts(rp, tcp("203.0.113.5", 25), tcp("10.1.2.3", 3306))
    assert smtp["verdict"] == "drop" and smtp["policy"] is True and smtp["rule"] is None
    assert "no rule of security groups" in smtp["reason"] and "default deny" in smtp["reason"]
    assert smtp["fix"]["rule"]["priority"] == 100 and smtp["fix"]["api"] is not None
    assert mysql["verdict"] == "drop" and mysql["rule"]["rule_id"] == "sgr-bp2db000000000001"
    assert mysql["fix"]["api"] is None and mysql["fix"]["command"] is None
    assert "priority 1" in mysql["fix"]["note"]


def test_referenced_group_and_inner_access_policy(replay):
    rp = replay()
    member, stranger, peer = verdicts(rp, tcp("172.16.1.20", 8080), tcp("172.16.1.21", 8080), tcp("172.16.0.11", 9000))
    assert member["verdict"] == "accept" and member["rule"]["rule_id"] == "sgr-bp1app00000000001"
    assert stranger["verdict"] == "drop"
    assert peer["verdict"] == "accept" and peer["rule"]["handle"] == EXTRA + "/inner"


def test_public_eip_and_instance_id_lookups(replay):
    rp = replay()
    v, = verdicts(rp, tcp("203.0.113.5", 80, dst="47.96.10.20"))
    assert v["verdict"] == "accept" and v["interface"] == ENI
    by_id = info(rp, instance_ids=["i-bp1web000000000001"])
    assert [i["id"] for i in by_id["interfaces"]] == [ENI]
    assert by_id["interfaces"][0]["private_addresses"] == ["172.16.0.10"]


def test_address_not_found(replay):
    rp = replay()
    with pytest.raises(InputError, match=r"address 172\.16\.9\.9 belongs to no network interface or instance in region cn-hangzhou"):
        info(rp, addresses=["172.16.9.9"])


def test_bad_credentials(replay):
    rp = replay(errors={"*": ["InvalidAccessKeyId.NotFound"]})
    with pytest.raises(BackendUnavailable, match=r"rejected the credentials \(InvalidAccessKeyId.NotFound\)"):
        info(rp, addresses=["172.16.0.10"])
    assert len(rp.server.requests) == 1


def test_permission_denied_lists_the_needed_permissions(replay):
    rp = replay(errors={"*": ["Forbidden.RAM"]})
    with pytest.raises(BackendUnavailable, match=r"permission denied for ecs:DescribeNetworkInterfaces.*ecs:DescribeSecurityGroupAttribute"):
        info(rp, addresses=["172.16.0.10"])


def test_unknown_region(replay):
    rp = replay(errors={"*": ["InvalidRegionId.NotFound"]})
    with pytest.raises(InputError, match=r"unknown Alibaba Cloud region 'cn-atlantis'"):
        info(rp, region="cn-atlantis", addresses=["172.16.0.10"])
    with pytest.raises(InputError, match=r"unknown Alibaba Cloud region 'Hangzhou!'"):
        info(rp, region="Hangzhou!", addresses=["172.16.0.10"])


def test_throttling_is_retried_until_it_succeeds(replay):
    rp = replay(errors={"DescribeSecurityGroupAttribute": ["Throttling.User", "Throttling.User"]})
    v, = verdicts(rp, tcp("203.0.113.5", 80))
    assert v["verdict"] == "accept"
    throttled = [r for r in rp.server.requests if r["headers"].get("x-acs-action") == "DescribeSecurityGroupAttribute"]
    assert len(throttled) == 4  # two throttled, then one answer per group


def test_throttling_reported_after_the_retries(replay):
    rp = replay(errors={"*": ["Throttling.User"] * 10})
    with pytest.raises(BackendUnavailable, match=r"throttled ecs:DescribeNetworkInterfaces .* after 3 attempts"):
        info(rp, addresses=["172.16.0.10"], retries=2)
    assert len(rp.server.requests) == 3


def test_missing_credentials_and_sdk(replay, monkeypatch):
    rp = replay()
    with pytest.raises(BackendUnavailable, match="no Alibaba Cloud credentials"):
        security_group_info("alicloud", region="cn-hangzhou", endpoint_url=rp.url, addresses=["172.16.0.10"])
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-env-key")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret")
    monkeypatch.setenv("ALIBABA_CLOUD_REGION_ID", "cn-hangzhou")
    result = security_group_info("alicloud", endpoint_url=rp.url, addresses=["172.16.0.10"])
    assert result["region"] == "cn-hangzhou"
    assert rp.server.requests[-1]["headers"]["Authorization"].startswith("ACS3-HMAC-SHA256 Credential=LTAI-env-key")
    monkeypatch.setattr(alicloud, "HAS_SDK", False)
    with pytest.raises(MissingDependency, match="alibabacloud_ecs20140526"):
        security_group_info("alicloud", endpoint_url=rp.url, addresses=["172.16.0.10"])
