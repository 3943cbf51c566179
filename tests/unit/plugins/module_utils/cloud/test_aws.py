# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""security_group_info for AWS, against a moto EC2 server on loopback (a real HTTP endpoint).

Each case builds the VPC, subnets, interfaces, groups and network ACLs it needs, asks the
library what happens to a packet, and checks what a user would check: the verdict, the rule that
decided it (group + rule id, or ACL + rule number), and that the proposed fix, applied to the
same endpoint, makes the flow pass.
"""

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import aws
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud.evaluate import security_group_info
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    BackendUnavailable, InputError, MissingDependency,
)
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator

REGION = "eu-west-1"


def info(url, **kw):
    kw.setdefault("region", REGION)
    return security_group_info("aws", endpoint_url=url, access_key="testing", secret_key="testing", **kw)


def tcp(src, dst, dport, **kw):
    pkt = {"family": "ipv4", "proto": "tcp", "src": src, "dst": dst, "dport": dport}
    pkt.update(kw)
    return pkt


@pytest.fixture
def net(ec2):
    """A VPC with a server subnet (10.0.1.0/24) and a client subnet (10.0.2.0/24)."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    server_subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    client_subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
    web = ec2.create_security_group(GroupName="web", Description="web servers", VpcId=vpc)["GroupId"]
    return {"ec2": ec2, "vpc": vpc, "server_subnet": server_subnet, "client_subnet": client_subnet, "web": web}


def ingress(ec2, group, proto, port, cidr=None, group_ref=None, prefix_list=None):
    perm = {"IpProtocol": proto, "FromPort": port, "ToPort": port}
    if cidr:
        perm["IpRanges"] = [{"CidrIp": cidr}]
    if group_ref:
        perm["UserIdGroupPairs"] = [{"GroupId": group_ref}]
    if prefix_list:
        perm["PrefixListIds"] = [{"PrefixListId": prefix_list}]
    rules = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[perm])["SecurityGroupRules"]
    return rules[0]["SecurityGroupRuleId"]


def eni(ec2, subnet, groups, address):
    return ec2.create_network_interface(SubnetId=subnet, Groups=groups, PrivateIpAddress=address)[
        "NetworkInterface"]["NetworkInterfaceId"]


def custom_acl(ec2, vpc, subnet, entries):
    """A network ACL with ``entries`` [(egress, number, action, protocol, cidr, (from, to))], associated with subnet."""
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    for egress, number, action, protocol, cidr, ports in entries:
        kw = {"NetworkAclId": acl, "RuleNumber": number, "Protocol": protocol, "RuleAction": action,
              "Egress": egress, "CidrBlock": cidr}
        if ports:
            kw["PortRange"] = {"From": ports[0], "To": ports[1]}
        ec2.create_network_acl_entry(**kw)
    current = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"][0]
    assoc = next(a["NetworkAclAssociationId"] for a in current["Associations"] if a["SubnetId"] == subnet)
    ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=acl)
    return acl


def apply_fix(ec2, fix):
    assert fix["api"] is not None, fix
    getattr(ec2, fix["api"]["method"])(**fix["api"]["params"])


def only(result):
    assert len(result["verdicts"]) == 1, result["verdicts"]
    return result["verdicts"][0]


def test_allowed_names_the_group_rule(net, moto_url):
    ec2 = net["ec2"]
    rule_id = ingress(ec2, net["web"], "tcp", 80, cidr="10.0.0.0/16")
    eni_id = eni(ec2, net["server_subnet"], [net["web"]], "10.0.1.10")
    result = info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.10", 80)])
    v = only(result)
    assert v["verdict"] == "accept"
    assert v["interface"] == eni_id
    assert (v["rule"]["group_id"], v["rule"]["rule_id"]) == (net["web"], rule_id)
    assert v["fix"] is None and v["fixes"] == []
    iface = result["interfaces"][0]
    assert iface["security_groups"] == [{"id": net["web"], "name": "web"}]
    assert iface["network_acl"]["default"] is True
    # both directions of the default ACL were read and let the packet and its reply through
    assert [(s["layer"], s["direction"], s["verdict"]) for s in v["steps"]] == [
        ("network_acl", "inbound", "accept"), ("security_group", "inbound", "accept"),
        ("security_group", "return", "accept"), ("network_acl", "return", "accept")]


def test_missing_ingress_rule_and_its_fix(net, moto_url):
    ec2 = net["ec2"]
    ingress(ec2, net["web"], "tcp", 22, cidr="10.0.0.0/16")
    eni(ec2, net["server_subnet"], [net["web"]], "10.0.1.10")
    v = only(info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.10", 8080)]))
    assert v["verdict"] == "drop"
    assert v["layer"] == "security_group" and v["policy"] is True and v["rule"] is None
    assert "no rule of security group %s (web)" % net["web"] in v["reason"]
    assert v["reply"] is None
    fix = v["fix"]
    assert fix["target"] == net["web"] and fix["direction"] == "ingress"
    assert fix["rule"] == {"protocol": "tcp", "from_port": 8080, "to_port": 8080, "source": "10.0.2.5/32", "action": "allow"}
    assert fix["command"].startswith("aws ec2 authorize-security-group-ingress --region eu-west-1 --group-id %s " % net["web"])
    assert '"FromPort":8080' in fix["command"] and '"CidrIp":"10.0.2.5/32"' in fix["command"]
    apply_fix(ec2, fix)
    after = only(info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.10", 8080)]))
    assert after["verdict"] == "accept"
    # exactly this flow: another source or port is still denied
    assert only(info(moto_url, packets=[tcp("10.0.2.6", "10.0.1.10", 8080)]))["verdict"] == "drop"
    assert only(info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.10", 8081)]))["verdict"] == "drop"


def test_allowed_by_a_referenced_group(net, moto_url):
    ec2 = net["ec2"]
    app = ec2.create_security_group(GroupName="app", Description="app servers", VpcId=net["vpc"])["GroupId"]
    rule_id = ingress(ec2, net["web"], "tcp", 5432, group_ref=app)
    eni(ec2, net["server_subnet"], [net["web"]], "10.0.1.10")
    eni(ec2, net["client_subnet"], [app], "10.0.2.7")
    result = info(moto_url, packets=[tcp("10.0.2.7", "10.0.1.10", 5432), tcp("10.0.2.8", "10.0.1.10", 5432)])
    member, stranger = result["verdicts"]
    assert member["verdict"] == "accept"
    assert member["rule"]["rule_id"] == rule_id
    assert "security group %s (10.0.2.7)" % app in member["rule"]["text"]
    assert stranger["verdict"] == "drop" and stranger["layer"] == "security_group"


def test_allowed_by_a_prefix_list(net, moto_url):
    ec2 = net["ec2"]
    pl = ec2.create_managed_prefix_list(PrefixListName="office", MaxEntries=5, AddressFamily="IPv4",
                                        Entries=[{"Cidr": "192.0.2.0/24"}])["PrefixList"]["PrefixListId"]
    ingress(ec2, net["web"], "tcp", 443, prefix_list=pl)
    eni(ec2, net["server_subnet"], [net["web"]], "10.0.1.10")
    result = info(moto_url, packets=[tcp("192.0.2.9", "10.0.1.10", 443), tcp("198.51.100.9", "10.0.1.10", 443)])
    assert [v["verdict"] for v in result["verdicts"]] == ["accept", "drop"]
    assert "prefix list %s" % pl in result["verdicts"][0]["rule"]["text"]


def test_nacl_deny_before_allow(net, moto_url):
    ec2 = net["ec2"]
    ingress(ec2, net["web"], "tcp", 80, cidr="0.0.0.0/0")
    eni(ec2, net["server_subnet"], [net["web"]], "10.0.1.10")
    acl = custom_acl(ec2, net["vpc"], net["server_subnet"], [
        (False, 90, "deny", "6", "10.0.2.0/24", (80, 80)),
        (False, 100, "allow", "-1", "0.0.0.0/0", None),
        (True, 100, "allow", "-1", "0.0.0.0/0", None)])
    result = info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.10", 80), tcp("10.0.3.5", "10.0.1.10", 80)])
    denied, other = result["verdicts"]
    assert denied["verdict"] == "drop" and denied["layer"] == "network_acl"
    assert (denied["rule"]["acl_id"], denied["rule"]["rule_number"]) == (acl, 90)
    assert "rule 90: deny tcp 80 from 10.0.2.0/24" in denied["reason"]
    assert other["verdict"] == "accept"
    fix = denied["fix"]
    assert fix["target"] == acl and fix["rule"]["rule_number"] == 89
    assert "--ingress --rule-number 89 --protocol 6 --rule-action allow --cidr-block 10.0.2.5/32 --port-range From=80,To=80" \
        in fix["command"]
    apply_fix(ec2, fix)
    assert only(info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.10", 80)]))["verdict"] == "accept"
    assert only(info(moto_url, packets=[tcp("10.0.2.6", "10.0.1.10", 80)]))["verdict"] == "drop"


def test_nacl_blocks_return_traffic(net, moto_url):
    ec2 = net["ec2"]
    ingress(ec2, net["web"], "tcp", 80, cidr="0.0.0.0/0")
    eni(ec2, net["server_subnet"], [net["web"]], "10.0.1.10")
    acl = custom_acl(ec2, net["vpc"], net["server_subnet"], [
        (False, 100, "allow", "-1", "0.0.0.0/0", None),
        (True, 50, "deny", "6", "0.0.0.0/0", (40000, 50000)),
        (True, 100, "allow", "6", "0.0.0.0/0", (1024, 65535))])
    v = only(info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.10", 80)]))
    assert v["verdict"] == "drop" and v["layer"] == "network_acl"
    assert (v["rule"]["acl_id"], v["rule"]["chain"], v["rule"]["rule_number"]) == (acl, "outbound", 50)
    ret = [s for s in v["steps"] if s["layer"] == "network_acl" and s["direction"] == "return"][0]
    assert ret["ports"] == [[32768, 60999]] and ret["denied_ports"] == [[40000, 50000]]
    assert "return traffic" in v["reason"] and "stateless" in v["reason"]
    # the inbound packet itself was allowed by both layers
    assert [s["verdict"] for s in v["steps"] if s["direction"] == "inbound"] == ["accept", "accept"]
    # a client whose port is outside the denied block gets through
    assert only(info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.10", 80, sport=33000)]))["verdict"] == "accept"
    assert only(info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.10", 80, sport=45000)]))["verdict"] == "drop"
    fix = v["fix"]
    assert fix["direction"] == "egress" and fix["rule"]["rule_number"] == 49
    assert fix["rule"]["from_port"] == 40000 and fix["rule"]["to_port"] == 50000
    apply_fix(ec2, fix)
    assert only(info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.10", 80)]))["verdict"] == "accept"


def test_nacl_without_any_outbound_rule_denies_replies_by_default(net, moto_url):
    ec2 = net["ec2"]
    ingress(ec2, net["web"], "tcp", 80, cidr="0.0.0.0/0")
    eni(ec2, net["server_subnet"], [net["web"]], "10.0.1.10")
    custom_acl(ec2, net["vpc"], net["server_subnet"], [(False, 100, "allow", "-1", "0.0.0.0/0", None)])
    v = only(info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.10", 80)], ephemeral_ports="1024-65535"))
    assert v["verdict"] == "drop" and v["policy"] is True and v["rule"] is None
    assert "implicit * rule" in v["reason"]
    assert v["fix"]["rule"]["from_port"] == 1024 and v["fix"]["rule"]["to_port"] == 65535


def test_both_layers_deny_gives_both_fixes(net, moto_url):
    ec2 = net["ec2"]
    eni(ec2, net["server_subnet"], [net["web"]], "10.0.1.10")
    custom_acl(ec2, net["vpc"], net["server_subnet"], [(True, 100, "allow", "-1", "0.0.0.0/0", None)])
    v = only(info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.10", 443)]))
    assert v["layer"] == "network_acl"
    assert [f["layer"] for f in v["fixes"]] == ["network_acl", "security_group"]
    for fix in v["fixes"]:
        apply_fix(ec2, fix)
    assert only(info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.10", 443)]))["verdict"] == "accept"


def test_public_elastic_ip_and_instance_and_eni_lookups(net, moto_url):
    ec2 = net["ec2"]
    ingress(ec2, net["web"], "tcp", 443, cidr="0.0.0.0/0")
    eni_id = eni(ec2, net["server_subnet"], [net["web"]], "10.0.1.10")
    alloc = ec2.allocate_address(Domain="vpc", Address="54.214.10.20")  # moto otherwise picks a 127.x address
    ec2.associate_address(AllocationId=alloc["AllocationId"], NetworkInterfaceId=eni_id)
    public = alloc["PublicIp"]
    result = info(moto_url, packets=[tcp("203.0.113.7", public, 443)])
    v = only(result)
    assert v["interface"] == eni_id and v["verdict"] == "accept"
    assert public in result["interfaces"][0]["public_addresses"]
    by_id = info(moto_url, network_interface_ids=[eni_id], packets=[tcp("203.0.113.7", None, 443)])
    assert only(by_id)["packet"]["dst"] == "10.0.1.10"
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    inst = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=net["server_subnet"],
                             SecurityGroupIds=[net["web"]])["Instances"][0]
    by_instance = info(moto_url, instance_ids=[inst["InstanceId"]])
    assert [i["instance_id"] for i in by_instance["interfaces"]] == [inst["InstanceId"]]
    assert by_instance["interfaces"][0]["security_groups"][0]["id"] == net["web"]


def test_address_not_found(net, moto_url):
    eni(net["ec2"], net["server_subnet"], [net["web"]], "10.0.1.10")
    with pytest.raises(InputError, match=r"address 10\.0\.1\.99 belongs to no network interface in region eu-west-1"):
        info(moto_url, packets=[tcp("10.0.2.5", "10.0.1.99", 80)])
    with pytest.raises(InputError, match=r"eni-0000000000000dead"):
        info(moto_url, network_interface_ids=["eni-0000000000000dead"])


def test_saved_ruleset_gives_the_same_inbound_verdict_with_the_host_evaluator(net, moto_url):
    ec2 = net["ec2"]
    ingress(ec2, net["web"], "tcp", 80, cidr="10.0.2.0/24")
    eni(ec2, net["server_subnet"], [net["web"]], "10.0.1.10")
    result = info(moto_url, addresses=["10.0.1.10"])
    ruleset = result["interfaces"][0]["ruleset"]
    ev = Evaluator(ruleset)
    ok = ev.evaluate(tcp("10.0.2.5", "10.0.1.10", 80), "input")
    bad = ev.evaluate(tcp("10.0.3.5", "10.0.1.10", 80), "input")
    assert ok["verdict"] == "accept" and bad["verdict"] == "drop"
    assert bad["chain"]["table"] == result["interfaces"][0]["id"] and bad["policy"] is True


# ---------------------------------------------------------------- errors

def test_bad_input_names_the_value(moto_url):
    with pytest.raises(InputError, match="unknown AWS region 'mars-1'"):
        info(moto_url, region="mars-1", addresses=["10.0.0.1"])
    with pytest.raises(InputError, match="no AWS region"):
        info(moto_url, region=None, addresses=["10.0.0.1"])
    with pytest.raises(InputError, match="invalid address '10.0.0.300'"):
        info(moto_url, addresses=["10.0.0.300"])
    with pytest.raises(InputError, match="invalid network interface id 'eth0'"):
        info(moto_url, network_interface_ids=["eth0"])
    with pytest.raises(InputError, match="no src"):
        info(moto_url, packets=[{"proto": "tcp", "dst": "10.0.0.1", "dport": 80}])
    with pytest.raises(InputError, match="invalid ephemeral_ports"):
        info(moto_url, addresses=["10.0.0.1"], ephemeral_ports="70000-80000")
    with pytest.raises(InputError, match="nothing to look up"):
        info(moto_url)


def _ec2_error(status, code, message):
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code><Message>%s</Message>'
            '</Error></Errors><RequestID>9c5b7e6a-1111-2222-3333-444455556666</RequestID></Response>' % (code, message))
    return status, {"Content-Type": "text/xml;charset=UTF-8"}, body.encode()


def test_bad_credentials(stub_server):
    server = stub_server(lambda *a: _ec2_error(401, "AuthFailure",
                                               "AWS was not able to validate the provided access credentials"))
    with pytest.raises(BackendUnavailable, match=r"AWS rejected the credentials \(AuthFailure"):
        info(server.url, addresses=["10.0.1.10"])
    assert len(server.requests) == 1  # not retried: retrying cannot fix credentials


def test_permission_denied_lists_the_needed_permissions(stub_server):
    server = stub_server(lambda *a: _ec2_error(403, "UnauthorizedOperation", "You are not authorized to perform this operation."))
    with pytest.raises(BackendUnavailable, match=r"permission denied for ec2:DescribeNetworkInterfaces.*ec2:DescribeNetworkAcls"):
        info(server.url, addresses=["10.0.1.10"])


def test_throttling_is_retried_then_reported(stub_server):
    server = stub_server(lambda *a: _ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."))
    with pytest.raises(BackendUnavailable, match=r"throttled ec2:DescribeNetworkInterfaces .* after 3 attempts"):
        info(server.url, addresses=["10.0.1.10"], retries=2)
    assert len(server.requests) == 3


def test_throttling_retried_until_it_succeeds(net, moto_url, stub_server):
    import urllib.request
    ec2 = net["ec2"]
    ingress(ec2, net["web"], "tcp", 80, cidr="0.0.0.0/0")
    eni(ec2, net["server_subnet"], [net["web"]], "10.0.1.10")
    count = {"n": 0}

    def handler(method, path, headers, body):
        count["n"] += 1
        if count["n"] <= 2:
            return _ec2_error(503, "RequestLimitExceeded", "Request limit exceeded.")
        fwd = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        req = urllib.request.Request(moto_url + path, data=body, headers=fwd, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {"Content-Type": resp.headers.get("Content-Type", "text/xml")}, resp.read()

    server = stub_server(handler)
    v = only(info(server.url, packets=[tcp("10.0.2.5", "10.0.1.10", 80)], retries=3))
    assert v["verdict"] == "accept"
    assert count["n"] > 2


def test_unreachable_endpoint_is_reported(stub_server):
    server = stub_server(lambda *a: (200, {}, b""))
    url = server.url
    server.stop()
    with pytest.raises(BackendUnavailable, match="cannot reach the EC2 endpoint for region 'eu-west-1'"):
        info(url, addresses=["10.0.1.10"], retries=0)


def test_missing_boto3_names_the_package(monkeypatch):
    monkeypatch.setattr(aws, "HAS_BOTO3", False)
    with pytest.raises(MissingDependency, match=r"install boto3"):
        info("http://127.0.0.1:9", addresses=["10.0.0.1"])
