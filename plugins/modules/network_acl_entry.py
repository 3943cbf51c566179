#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: network_acl_entry
short_description: Add (or remove) the minimal allow entry of an AWS network ACL, numbered before the deny that decides
version_added: "0.2.0"
description:
  - Makes the network ACL O(network_acl_id) allow (O(state=present)) one flow - O(protocol), O(port) (or
    O(icmp_type)) - from O(source) as a /32 or /128 (or the network O(cidr)), inbound or, with O(egress), outbound
    (network ACLs are stateless - the replies to a client's ephemeral ports need an egress entry of their own).
  - The new entry gets the highest free rule number below O(before), the rule number of the deny that decides today
    (default 32767, the implicit C(*) deny), so it is tried before that deny and after every entry that came
    before it.
  - An allow entry for exactly this flow numbered below O(before) already counts, so a second run changes nothing.
    O(state=absent) deletes the allow entry for exactly this flow, whatever its number.
  - A rule from anywhere (C(0.0.0.0/0) or C(::/0)) is refused unless O(allow_anywhere=true).
  - Check mode reads the ACL, predicts its entries after the change and changes nothing.
  - "Permissions needed: C(ec2:DescribeNetworkAcls), C(ec2:CreateNetworkAclEntry), C(ec2:DeleteNetworkAclEntry)."
author:
  - netdiag.reachability developers (@netdiag)
requirements:
  - boto3 and botocore (requirements/cloud.txt)
options:
  network_acl_id:
    description: The network ACL (C(acl-...)).
    type: str
    required: true
  protocol:
    description: The flow's protocol.
    type: str
    choices: [tcp, udp, icmp, icmpv6]
    default: tcp
  port:
    description: The port (V(80)) or range (V(32768-60999)); for tcp and udp, required there.
    type: str
  icmp_type:
    description: The ICMP type (default 8, echo request; 128 for icmpv6); V(-1) for every type.
    type: int
  source:
    description: The client's address (for O(egress), the address the replies go to), as a /32 or /128.
    type: str
  cidr:
    description: A network instead of one address (without host bits). Exactly one of O(source) and O(cidr).
    type: str
  egress:
    description: An outbound entry instead of an inbound one.
    type: bool
    default: false
  before:
    description: The rule number of the deny the new entry must come before.
    type: int
    default: 32767
  allow_anywhere:
    description: Allow an entry for anywhere (O(cidr=0.0.0.0/0) or O(cidr=::/0)); without it such a request fails.
    type: bool
    default: false
  state:
    description: V(present) adds the entry, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - netdiag.reachability.attributes
  - netdiag.reachability.aws
attributes:
  check_mode:
    support: full
    description: Reads the ACL and predicts its entries after the change; calls no changing API.
  diff_mode:
    support: full
    description: Returns the ACL's entries of that direction before and after, in rule-number order.
  platform:
    platforms: posix
    details: Runs wherever boto3 reaches the EC2 API, usually the controller (C(delegate_to=localhost)).
"""

EXAMPLES = r"""
- name: Let 10.200.1.10 reach 80/tcp before the ACL's rule 100 that denies it
  netdiag.reachability.network_acl_entry:
    network_acl_id: acl-0123456789abcdef0
    port: "80"
    source: 10.200.1.10
    before: 100
  check_mode: true
  diff: true
  delegate_to: localhost

- name: And the replies to its ephemeral ports
  netdiag.reachability.network_acl_entry:
    network_acl_id: acl-0123456789abcdef0
    port: "32768-60999"
    source: 10.200.1.10
    egress: true
"""

RETURN = r"""
msg:
  description: One line saying what changed, would change, or that the ACL already allows the flow.
  returned: always
  type: str
  sample: "added rule 99 of acl-0123456789abcdef0: allow tcp 80 from 10.200.1.10/32"
rule_number:
  description: The rule number of the entry added (or that would be, that already allows the flow, or deleted).
  returned: always
  type: int
  sample: 99
api:
  description: The EC2 call made (in check mode, that would be made), C(method) and C(params); null when nothing changes.
  returned: always
  type: dict
entries:
  description: The ACL's entries of that direction before and after (in check mode, predicted), in rule-number order.
  returned: always
  type: dict
  sample: {"before": ["ingress 100 tcp 80 from 0.0.0.0/0 deny", "ingress * all from 0.0.0.0/0 deny"],
           "after": ["ingress 99 tcp 80 from 10.200.1.10/32 allow", "ingress 100 tcp 80 from 0.0.0.0/0 deny",
                     "ingress * all from 0.0.0.0/0 deny"]}
diff:
  description: The same as text, for C(--diff).
  returned: always
  type: dict
"""

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import MissingDependency
from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import aws
from ansible_collections.netdiag.reachability.plugins.module_utils.fix.network_acl import ensure, normalize_request
from ansible_collections.netdiag.reachability.plugins.module_utils.fix.security_group import AWS_CONNECTION_SPEC, RuleTooWide


def _ensure(module):
    p = module.params
    request = normalize_request(p["network_acl_id"], p["protocol"], p["port"], p["source"], p["cidr"], p["icmp_type"],
                                p["state"], p["allow_anywhere"], p["egress"], p["before"])
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
        network_acl_id=dict(type="str", required=True),
        protocol=dict(type="str", choices=["tcp", "udp", "icmp", "icmpv6"], default="tcp"),
        port=dict(type="str"),
        icmp_type=dict(type="int"),
        source=dict(type="str"),
        cidr=dict(type="str"),
        egress=dict(type="bool", default=False),
        before=dict(type="int", default=32767),
        allow_anywhere=dict(type="bool", default=False),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        **AWS_CONNECTION_SPEC
    ), _ensure, refusals=[RuleTooWide], mutually_exclusive=[["source", "cidr"]], required_one_of=[["source", "cidr"]])


if __name__ == "__main__":
    main()
