#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: security_group_rule
short_description: Add (or remove) the minimal ingress rule of an AWS security group, with check mode and a diff
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
  - "Permissions needed: C(ec2:DescribeSecurityGroups), C(ec2:AuthorizeSecurityGroupIngress),
    C(ec2:RevokeSecurityGroupIngress)."
  - The remediate playbook runs it on the controller for the security-group fixes of a diagnose report.
author:
  - netdiag.reachability developers (@netdiag)
requirements:
  - boto3 and botocore (requirements/cloud.txt)
options:
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
    description: The ICMP type (default 8, echo request; 128 for icmpv6); V(-1) for every type.
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
    details: Runs wherever boto3 reaches the EC2 API, usually the controller (C(delegate_to=localhost)).
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
  description: The rule asked for (C(protocol), C(from_port), C(to_port), C(cidr), C(description)).
  returned: always
  type: dict
  sample: {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr": "10.200.1.10/32",
           "description": "netdiag: allow 80/tcp from 10.200.1.10/32"}
api:
  description: The EC2 call made (in check mode, that would be made), C(method) and C(params); null when nothing changes.
  returned: always
  type: dict
command:
  description: The same call as an AWS CLI command; null when nothing changes.
  returned: always
  type: str
  sample: "aws ec2 authorize-security-group-ingress --region eu-west-1 --group-id sg-0123456789abcdef0 --ip-permissions ..."
rules:
  description: The group's ingress rules before and after (in check mode, predicted), one line per rule and source.
  returned: always
  type: dict
  sample: {"before": ["ingress tcp 22 from 10.200.1.0/24"],
           "after": ["ingress tcp 22 from 10.200.1.0/24", "ingress tcp 80 from 10.200.1.10/32"]}
diff:
  description: The same as text, for C(--diff).
  returned: always
  type: dict
"""

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import MissingDependency
from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import aws
from ansible_collections.netdiag.reachability.plugins.module_utils.fix.security_group import (
    AWS_CONNECTION_SPEC,
    RuleTooWide, ensure, normalize_request)


def _ensure(module):
    p = module.params
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
        group_id=dict(type="str", required=True),
        protocol=dict(type="str", choices=["tcp", "udp", "icmp", "icmpv6"], default="tcp"),
        port=dict(type="str"),
        icmp_type=dict(type="int"),
        source=dict(type="str"),
        cidr=dict(type="str"),
        allow_anywhere=dict(type="bool", default=False),
        description=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        **AWS_CONNECTION_SPEC
    ), _ensure, refusals=[RuleTooWide], mutually_exclusive=[["source", "cidr"]], required_one_of=[["source", "cidr"]])


if __name__ == "__main__":
    main()
