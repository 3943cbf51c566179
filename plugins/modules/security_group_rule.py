#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: security_group_rule
short_description: Add (or remove) the minimal ingress rule of an AWS or Alibaba Cloud security group, with check mode and a diff
version_added: "0.2.0"
description:
  - Makes the security group O(group_id) allow (O(state=present)) or stop allowing (O(state=absent)) one flow -
    O(protocol), O(port) (or O(icmp_type)) - from one address, O(source), as a /32 (IPv4) or /128 (IPv6), or from
    the network O(cidr).
  - A rule from anywhere (C(0.0.0.0/0) or C(::/0)) is refused unless O(allow_anywhere=true).
  - The group is read first and only a missing rule is added (or, for O(state=absent), only a present one is
    revoked), so a second run changes nothing. Only the exact rule is compared - a broader rule that already
    covers the flow is left alone and does not count.
  - Check mode reads the group, predicts its ingress rules after the change and changes nothing.
  - "AWS (O(provider=aws), the default): permissions needed C(ec2:DescribeSecurityGroups),
    C(ec2:AuthorizeSecurityGroupIngress), C(ec2:RevokeSecurityGroupIngress)."
  - "Alibaba Cloud ECS (O(provider=alicloud)): an Accept rule at O(priority) - ECS tries the rules of all the groups of
    an interface by priority, 1 first, and at equal priority a Drop rule beats an Accept rule. It is added with
    C(AuthorizeSecurityGroup) and removed with C(RevokeSecurityGroup) (the same permission). ECS identifies a rule
    without its priority, so the same rule at another priority is moved to O(priority) with C(ModifySecurityGroupRule)
    (by its rule id). The connection options are Alibaba Cloud's: O(region), O(access_key), O(secret_key),
    O(session_token) (the STS security token), O(endpoint_url), O(retries); see each one for the environment variables."
  - "Alibaba Cloud: permissions needed C(ecs:DescribeSecurityGroupAttribute), C(ecs:AuthorizeSecurityGroup),
    C(ecs:RevokeSecurityGroup), C(ecs:ModifySecurityGroupRule)."
  - The remediate playbook runs it on the controller for the security-group fixes of a diagnose report.
author:
  - netdiag.reachability developers (@netdiag)
requirements:
  - "AWS: boto3 and botocore (requirements/cloud.txt)"
  - "Alibaba Cloud: alibabacloud_ecs20140526 and alibabacloud_tea_openapi, the official SDK (requirements/cloud.txt)"
options:
  provider:
    description: The cloud of the group.
    type: str
    choices: [aws, alicloud]
    default: aws
  group_id:
    description: The security group (C(sg-...)).
    type: str
    required: true
  protocol:
    description: The flow's protocol.
    type: str
    choices: [tcp, udp, icmp, icmpv6]
    default: tcp
  port:
    description: The port (V(80)) or range (V(8000-8010)); for tcp and udp, required there.
    type: str
  icmp_type:
    description:
      - The ICMP type (default 8, echo request; 128 for icmpv6); V(-1) for every type.
      - Alibaba Cloud rules match every ICMP type (port range C(-1/-1)); omit it or give V(-1).
    type: int
  source:
    description: The client's address; the rule allows it as a /32 or /128. Exactly one of O(source) and O(cidr).
    type: str
  cidr:
    description: A network to allow instead of one address (without host bits).
    type: str
  allow_anywhere:
    description: Allow a rule from anywhere (O(cidr=0.0.0.0/0) or O(cidr=::/0)); without it such a request fails.
    type: bool
    default: false
  description:
    description: "The rule's description; default C(netdiag: allow PORT/PROTOCOL from CIDR)."
    type: str
  state:
    description: V(present) adds the rule, V(absent) revokes it.
    type: str
    choices: [present, absent]
    default: present
  priority:
    description:
      - Alibaba Cloud only - the Accept rule's priority, 1 (tried first) to 100. The remediate playbook passes the one
        the diagnose report's fix chose (one before the Drop rule that decides, across every group of the interface).
      - Default, for O(state=present) - one before the first Drop rule of this group that matches part of the flow
        (a Drop rule naming a source group or prefix list is not counted), else 100; a matching Drop rule at priority 1
        cannot be beaten and the module fails naming it. Without O(priority), the same rule already at a lower
        number counts as present.
      - For O(state=absent), only the rule at this priority is revoked; default - at any priority.
    type: int
  region:
    description:
      - "AWS: the region; default from the environment (C(AWS_REGION)) or the shared config."
      - "Alibaba Cloud: the region id (C(cn-hangzhou)); default C(ALIBABA_CLOUD_REGION_ID) or C(ALICLOUD_REGION)."
  profile:
    description: AWS only - a profile of the shared credentials/config files.
  access_key:
    description:
      - "AWS: access key id; default from boto3's usual chain."
      - "Alibaba Cloud: AccessKey id; default C(ALIBABA_CLOUD_ACCESS_KEY_ID) or C(ALICLOUD_ACCESS_KEY)."
  secret_key:
    description:
      - "AWS: secret access key."
      - "Alibaba Cloud: AccessKey secret; default C(ALIBABA_CLOUD_ACCESS_KEY_SECRET) or C(ALICLOUD_SECRET_KEY)."
  session_token:
    description:
      - "AWS: session token."
      - "Alibaba Cloud: STS security token; default C(ALIBABA_CLOUD_SECURITY_TOKEN) or C(ALICLOUD_SECURITY_TOKEN)."
  endpoint_url:
    description:
      - Another API endpoint (C(https://HOST[:PORT]) or C(http://HOST[:PORT])) - AWS an EC2 endpoint (a test server,
        a VPC endpoint), Alibaba Cloud an ECS endpoint (a private endpoint, a test server).
  retries:
    description: How many times a throttled call is retried, with exponential backoff.
extends_documentation_fragment:
  - netdiag.reachability.attributes
  - netdiag.reachability.aws
attributes:
  check_mode:
    support: full
    description: Reads the group and predicts its rules after the change; calls no changing API.
  diff_mode:
    support: full
    description: Returns the group's ingress rules before and after, one line per rule and source.
  platform:
    platforms: posix
    details: Runs wherever the provider's SDK reaches its API, usually the controller (C(delegate_to=localhost)).
"""

EXAMPLES = r"""
- name: Let 10.200.1.10 reach 80/tcp through sg-0123456789abcdef0 (see the change first)
  netdiag.reachability.security_group_rule:
    group_id: sg-0123456789abcdef0
    port: "80"
    source: 10.200.1.10
    region: eu-west-1
  check_mode: true
  diff: true
  delegate_to: localhost

- name: Stop allowing the office network on 5432/tcp
  netdiag.reachability.security_group_rule:
    group_id: sg-0123456789abcdef0
    port: "5432"
    cidr: 192.0.2.0/24
    state: absent

- name: Let 198.51.100.7 reach 80/tcp through an Alibaba Cloud group, before the Drop rule at priority 10
  netdiag.reachability.security_group_rule:
    provider: alicloud
    region: cn-hangzhou
    group_id: sg-bp67acfmxazb4p0000
    port: "80"
    source: 198.51.100.7
    priority: 9   # omitted: one before the first Drop rule of the group that matches the flow
  delegate_to: localhost
"""

RETURN = r"""
msg:
  description: One line saying what changed, would change, or that the group is already as asked.
  returned: always
  type: str
  sample: "allowed 80/tcp from 10.200.1.10/32 in sg-0123456789abcdef0"
group:
  description: The group (C(id), C(name), C(vpc_id)).
  returned: always
  type: dict
  sample: {"id": "sg-0123456789abcdef0", "name": "web", "vpc_id": "vpc-0a1b2c3d"}
rule:
  description:
    - The rule asked for (C(protocol), C(from_port), C(to_port), C(cidr), C(description)).
    - Alibaba Cloud also C(priority), the rule's (computed when O(priority) is omitted); ICMP ports are C(-1).
  returned: always
  type: dict
  sample: {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr": "10.200.1.10/32",
           "description": "netdiag: allow 80/tcp from 10.200.1.10/32"}
api:
  description:
    - The call made (in check mode, that would be made); null when nothing changes.
    - AWS - the boto3 C(method) and its C(params).
    - Alibaba Cloud - the ECS C(operation) (C(AuthorizeSecurityGroup), C(RevokeSecurityGroup), C(ModifySecurityGroupRule)),
      the SDK C(method) and the C(params) in the API's names (C(RegionId), C(SecurityGroupId), C(Permissions)).
  returned: always
  type: dict
  sample: {"operation": "AuthorizeSecurityGroup", "method": "authorize_security_group",
           "params": {"RegionId": "cn-hangzhou", "SecurityGroupId": "sg-bp67acfmxazb4p0000",
                      "Permissions": [{"Policy": "accept", "Priority": 9, "IpProtocol": "TCP", "PortRange": "80/80",
                                       "SourceCidrIp": "198.51.100.7/32", "Description": "netdiag: allow 80/tcp from 198.51.100.7/32"}]}}
command:
  description: The same call as a CLI command (C(aws ec2 ...), C(aliyun ecs ...)); null when nothing changes.
  returned: always
  type: str
  sample: "aws ec2 authorize-security-group-ingress --region eu-west-1 --group-id sg-0123456789abcdef0 --ip-permissions ..."
rules:
  description:
    - The group's ingress rules before and after (in check mode, predicted), one line per rule and source.
    - Alibaba Cloud - with priority and policy, in the order ECS tries them (C(ingress priority 9 accept tcp 80 from 198.51.100.7/32)).
  returned: always
  type: dict
  sample: {"before": ["ingress tcp 22 from 10.200.1.0/24"],
           "after": ["ingress tcp 22 from 10.200.1.0/24", "ingress tcp 80 from 10.200.1.10/32"]}
diff:
  description: The same as text, for C(--diff).
  returned: always
  type: dict
"""

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, MissingDependency
from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import alicloud, aws
from ansible_collections.netdiag.reachability.plugins.module_utils.fix import alicloud_security_group
from ansible_collections.netdiag.reachability.plugins.module_utils.fix.security_group import (
    AWS_CONNECTION_SPEC,
    RuleTooWide, ensure, normalize_request)


def _ensure_alicloud(module):
    p = module.params
    if p["profile"] is not None:
        raise InputError("profile %r is for provider aws; Alibaba Cloud takes access_key and secret_key (or "
                         "ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET)" % (p["profile"],))
    request = alicloud_security_group.normalize_request(
        p["group_id"], p["protocol"], p["port"], p["source"], p["cidr"], p["icmp_type"], p["state"], p["allow_anywhere"],
        p["description"], p["priority"])
    try:
        client = alicloud.Client(region=p["region"], access_key=p["access_key"], secret_key=p["secret_key"],
                                 security_token=p["session_token"], endpoint_url=p["endpoint_url"], retries=p["retries"],
                                 permissions=alicloud_security_group.PERMISSIONS)
    except MissingDependency as exc:
        exc.result = {"exception": alicloud.SDK_IMPORT_ERROR}
        raise
    return alicloud_security_group.ensure(client, request, check_mode=module.check_mode)


def _ensure(module):
    p = module.params
    if p["provider"] == "alicloud":
        return _ensure_alicloud(module)
    if p["priority"] is not None:
        raise InputError("priority %r is for provider alicloud: the rules of an AWS security group have no order" % (p["priority"],))
    request = normalize_request(p["group_id"], p["protocol"], p["port"], p["source"], p["cidr"], p["icmp_type"],
                                p["state"], p["allow_anywhere"], p["description"])
    try:
        client, region = aws.connect(region=p["region"], profile=p["profile"], access_key=p["access_key"],
                                     secret_key=p["secret_key"], session_token=p["session_token"],
                                     endpoint_url=p["endpoint_url"], retries=p["retries"])
    except MissingDependency as exc:
        exc.result = {"exception": aws.BOTO3_IMPORT_ERROR}
        raise
    return ensure(client, request, region, check_mode=module.check_mode)


def main():
    run_module(dict(
        provider=dict(type="str", choices=["aws", "alicloud"], default="aws"),
        group_id=dict(type="str", required=True),
        protocol=dict(type="str", choices=["tcp", "udp", "icmp", "icmpv6"], default="tcp"),
        port=dict(type="str"),
        icmp_type=dict(type="int"),
        source=dict(type="str"),
        cidr=dict(type="str"),
        allow_anywhere=dict(type="bool", default=False),
        description=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        priority=dict(type="int"),
        **AWS_CONNECTION_SPEC
    ), _ensure, refusals=[RuleTooWide], mutually_exclusive=[["source", "cidr"]], required_one_of=[["source", "cidr"]])


if __name__ == "__main__":
    main()
