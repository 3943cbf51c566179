#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: security_group_info
short_description: Which cloud security group and network ACL rules apply to an address, and do they allow a packet
version_added: 0.1.0
description:
  - Finds the network interfaces behind addresses (private, public or Elastic IP), instance ids or network
    interface ids, reads their security groups and (AWS) the subnet's network ACL, and normalises them into the
    collection's rule model (see C(docs/rule-model.md)) with the origin of every rule.
  - For each of O(packets) it answers whether the cloud lets it in, by which rule - or that no rule allows it -
    in the same verdict shape as the host firewall evaluator, and for a denial the minimal fix as data, API call
    and CLI command.
  - "AWS: security groups are a stateful allow-list (any matching rule allows, else default deny; replies pass).
    Network ACLs are stateless: rules in rule-number order, first match decides, C(*) denies the rest; the reply
    must be allowed too, on the client's ephemeral ports (see O(ephemeral_ports))."
  - "Alibaba Cloud ECS: the rules of all groups of the interface sorted by priority (1 first), Drop before
    Accept at equal priority, first match decides, inbound default deny; groups are stateful."
  - Read-only. Referenced groups are resolved to the private addresses of the interfaces that carry them;
    AWS managed prefix lists to their CIDRs. What cannot be resolved makes the verdict C(indeterminate), never a guess.
  - "Permissions needed. AWS: C(ec2:DescribeNetworkInterfaces), C(ec2:DescribeAddresses),
    C(ec2:DescribeSecurityGroups), C(ec2:DescribeSecurityGroupRules), C(ec2:DescribeNetworkAcls),
    C(ec2:GetManagedPrefixListEntries). Alibaba Cloud: C(ecs:DescribeInstances), C(ecs:DescribeNetworkInterfaces),
    C(ecs:DescribeSecurityGroupAttribute)."
author:
  - netdiag.reachability developers (@netdiag)
requirements:
  - "AWS: boto3 and botocore (requirements/cloud.txt)"
  - "Alibaba Cloud: alibabacloud_ecs20140526 and alibabacloud_tea_openapi, the official SDK (requirements/cloud.txt)"
options:
  provider:
    description: The cloud.
    type: str
    required: true
    choices: [aws, alicloud]
  addresses:
    description:
      - Addresses whose interfaces to read (private, public or Elastic IP).
      - Without O(addresses), O(instance_ids) and O(network_interface_ids), the C(dst) of O(packets) are used.
    type: list
    elements: str
    default: []
  instance_ids:
    description: Instances whose interfaces to read (AWS - every attached interface; Alibaba Cloud - the primary one).
    type: list
    elements: str
    default: []
  network_interface_ids:
    description: Network interfaces (C(eni-...)) to read.
    type: list
    elements: str
    default: []
  packets:
    description:
      - Packets to evaluate, like for the host firewall evaluator.
      - A packet without C(dst) is evaluated against every interface found (C(dst) becomes the interface's address).
    type: list
    elements: dict
    default: []
    suboptions:
      family:
        description: C(ipv4) or C(ipv6); taken from the addresses when omitted.
        type: str
      proto:
        description: Protocol (C(tcp), C(udp), C(icmp), a number, ...).
        type: str
        required: true
        aliases: [protocol]
      src:
        description: Source address of the client (cloud rules match on it).
        type: str
        required: true
        aliases: [source_address]
      dst:
        description: Destination address (one of the interface's private or public addresses).
        type: str
        aliases: [address]
      sport:
        description: The client's source port; when omitted, replies are checked for every port of O(ephemeral_ports).
        type: int
      dport:
        description: Destination port (required for TCP and UDP).
        type: int
        aliases: [port]
      icmp_type:
        description: ICMP type (default echo-request).
        type: raw
      icmp_code:
        description: ICMP code.
        type: int
  ephemeral_ports:
    description:
      - The client's ephemeral port range, C(LOW-HIGH), used to check that a stateless network ACL lets the
        replies out when a packet has no C(sport).
      - The default is Linux's C(net.ipv4.ip_local_port_range); Windows clients use 49152-65535, NAT gateways and
        load balancers 1024-65535.
    type: str
    default: 32768-60999
  region:
    description:
      - Region. AWS - else C(AWS_REGION), C(AWS_DEFAULT_REGION) or the profile's region.
        Alibaba Cloud - else C(ALIBABA_CLOUD_REGION_ID) or C(ALICLOUD_REGION).
    type: str
    aliases: [aws_region, ec2_region, alicloud_region]
  profile:
    description: AWS named profile (else C(AWS_PROFILE)). Not used for Alibaba Cloud.
    type: str
    aliases: [aws_profile]
  access_key:
    description:
      - Access key id. AWS - else C(AWS_ACCESS_KEY_ID), the profile, or an instance role.
        Alibaba Cloud - else C(ALIBABA_CLOUD_ACCESS_KEY_ID) or C(ALICLOUD_ACCESS_KEY).
    type: str
    aliases: [aws_access_key_id, aws_access_key, alicloud_access_key]
  secret_key:
    description:
      - Secret access key. AWS - else C(AWS_SECRET_ACCESS_KEY).
        Alibaba Cloud - else C(ALIBABA_CLOUD_ACCESS_KEY_SECRET) or C(ALICLOUD_SECRET_KEY).
    type: str
    aliases: [aws_secret_access_key, aws_secret_key, alicloud_secret_key]
  session_token:
    description:
      - Temporary session / STS security token. AWS - else C(AWS_SESSION_TOKEN).
        Alibaba Cloud - else C(ALIBABA_CLOUD_SECURITY_TOKEN) or C(ALICLOUD_SECURITY_TOKEN).
    type: str
    aliases: [aws_session_token, security_token, alicloud_security_token]
  endpoint_url:
    description: API endpoint to use instead of the region's (C(http(s)://host[:port])), e.g. a VPC endpoint or a test server.
    type: str
    aliases: [aws_endpoint_url, ec2_url]
  retries:
    description: How many times a throttled call is retried, with exponential backoff, before the module fails.
    type: int
    default: 4
extends_documentation_fragment:
  - netdiag.reachability.attributes.info_module
attributes:
  platform:
    platforms: posix
    details: Any POSIX host with Python and the provider's SDK; usually the controller.
notes:
  - Read-only; always returns C(changed=false). The fixes are proposals; nothing is applied.
  - The fix for a security group denial adds the rule to the interface's first security group.
  - Alibaba Cloud VPC network ACLs and AWS Network Firewall are not read.
"""

EXAMPLES = r"""
- name: Why can't 10.0.2.5 reach db01 (10.0.1.10) on 5432?
  netdiag.reachability.security_group_info:
    provider: aws
    region: eu-west-1
    packets:
      - {proto: tcp, src: 10.0.2.5, dst: 10.0.1.10, dport: 5432}
  register: cloud

- name: Show the verdict and the fix
  ansible.builtin.debug:
    msg: "{{ cloud.verdicts[0].reason }} -- fix: {{ cloud.verdicts[0].fix.command | default('none needed') }}"

- name: Rules of an Alibaba Cloud instance, and whether port 80 is open to the world
  netdiag.reachability.security_group_info:
    provider: alicloud
    region: cn-hangzhou
    instance_ids: [i-bp67acfmxazb4ph1xxxx]
    packets:
      - {proto: tcp, src: 198.51.100.7, dport: 80}
"""

RETURN = r"""
provider:
  description: The provider, as given.
  type: str
  returned: always
  sample: aws
region:
  description: The region read.
  type: str
  returned: always
  sample: eu-west-1
interfaces:
  description: One entry per network interface found.
  type: list
  elements: dict
  returned: always
  contains:
    provider:
      description: C(aws) or C(alicloud).
      type: str
      sample: aws
    region:
      description: Region of the interface.
      type: str
      sample: eu-west-1
    id:
      description: Network interface id (an Alibaba Cloud classic instance without ENI - the instance id).
      type: str
      sample: eni-0bb9b6d35f7c16f79
    type:
      description: Interface type as the provider names it.
      type: str
      sample: interface
    instance_id:
      description: Instance the interface is attached to, null when detached.
      type: str
      sample: i-0123456789abcdef0
    vpc_id:
      description: VPC id.
      type: str
      sample: vpc-46d4c7aa18bc876a5
    subnet_id:
      description: Subnet (AWS) or vSwitch (Alibaba Cloud) id.
      type: str
      sample: subnet-999f4bbfd372d9d4a
    network_type:
      description: Alibaba Cloud only - C(vpc) or C(classic).
      type: str
      sample: vpc
    private_addresses:
      description: Private IPv4 and IPv6 addresses, primary first.
      type: list
      elements: str
      sample: [10.0.1.10]
    public_addresses:
      description: Public and Elastic IP addresses associated with it.
      type: list
      elements: str
      sample: [54.214.10.20]
    security_groups:
      description: Its security groups (C(id), C(name)), in the provider's order.
      type: list
      elements: dict
      sample: [{"id": "sg-0bbbe09c89df963bf", "name": "web"}]
    network_acl:
      description: AWS - the subnet's network ACL (C(id), C(default)); null for Alibaba Cloud.
      type: dict
      sample: {"id": "acl-464601fb556a357a9", "default": true}
    ruleset:
      description:
        - The cloud layers in the common rule model (docs/rule-model.md), one table per layer, with C(layer) and C(label).
        - Network ACL - chains C(inbound) (prerouting) and C(outbound) (postrouting), origins with C(acl_id) and C(rule_number).
        - Security groups - chains C(ingress) (input) and C(egress) (output), origins with C(group_id) and C(rule_id)
          (Alibaba Cloud also C(priority) and C(policy)).
      type: dict
      sample: {"model": 1, "tables": [], "warnings": []}
verdicts:
  description: One entry per packet and interface it reaches, in the order of O(packets).
  type: list
  elements: dict
  returned: always
  contains:
    interface:
      description: The interface id.
      type: str
      sample: eni-0bb9b6d35f7c16f79
    provider:
      description: The provider.
      type: str
      sample: aws
    packet:
      description: The packet as evaluated (normalised; C(dst) filled in when it was omitted).
      type: dict
      sample: {"family": "ipv4", "proto": "tcp", "src": "10.0.2.5", "dst": "10.0.1.10", "dport": 80}
    verdict:
      description: C(accept), C(drop) or C(indeterminate).
      type: str
      sample: drop
    reply:
      description: What the client gets back - always null (security groups and network ACLs drop silently).
      type: dict
      sample: null
    rule:
      description:
        - Origin of the deciding rule (C(backend), C(table), C(chain), C(handle), C(text) and the provider's ids);
          for C(accept), the rule that let the packet in; null when a default decided.
      type: dict
      sample: {"backend": "aws-network-acl", "acl_id": "acl-0f1", "rule_number": 90, "chain": "inbound",
               "text": "acl-0f1 inbound rule 90: deny tcp 80 from 10.0.2.0/24"}
    policy:
      description: True when a layer's default decided (no rule allows it, or the network ACL's C(*) rule).
      type: bool
      sample: false
    chain:
      description: The chain of the deciding layer as the host evaluator reports it.
      type: dict
      sample: {"backend": "aws-network-acl", "family": "inet", "table": "acl-0f1", "chain": "inbound",
               "hook": "prerouting", "priority": 0}
    trace:
      description: Every rule that matched on the way in, in order.
      type: list
      elements: dict
      sample: []
    nat:
      description: Always null (kept for the host evaluator's shape).
      type: dict
      sample: null
    hooks:
      description: The hooks walked on the way in.
      type: list
      elements: str
      sample: [prerouting, input]
    reason:
      description: The verdict in one sentence, naming the layer and the rule.
      type: str
      sample: "tcp 10.0.2.5 -> 10.0.1.10:8080 to eni-0bb9 is dropped: no rule of security group sg-0bb (web) of eni-0bb9 allows it"
    warnings:
      description: What the model could not represent.
      type: list
      elements: str
      sample: []
    layer:
      description: C(network_acl) or C(security_group) - the layer that decided a denial; null for C(accept).
      type: str
      sample: security_group
    steps:
      description:
        - Every layer the packet and its replies meet, in order (C(layer), C(backend), C(table), C(label),
          C(direction) C(inbound) or C(return), C(verdict), C(rule), C(policy), C(reason), C(ports) and
          C(denied_ports) for replies).
      type: list
      elements: dict
      sample: []
    fix:
      description:
        - The change that allows exactly this flow at the deciding layer, null when allowed.
        - C(provider), C(layer), C(target) (group or ACL id), C(direction), C(rule) (C(protocol), C(from_port),
          C(to_port), C(source) or C(destination), C(action), C(rule_number) or C(priority)), C(api) (C(operation),
          boto3/SDK C(method), C(params)), C(command) (the provider's CLI), C(note).
        - C(api) and C(command) are null when no rule can be added (say a Drop rule at priority 1); C(note) says why.
      type: dict
      sample: {"target": "sg-0bb", "command": "aws ec2 authorize-security-group-ingress --region eu-west-1 --group-id sg-0bb ..."}
    fixes:
      description: Every change the flow needs, one per denying layer, in path order (the first is RV(verdicts[].fix)).
      type: list
      elements: dict
      sample: []
warnings:
  description: What could not be read or modelled (say an unreadable prefix list).
  type: list
  elements: str
  returned: always
  sample: []
"""

from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import alicloud
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import aws
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud.evaluate import security_group_info
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import MissingDependency
from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module


def _read(module):
    p = module.params
    packets = [{k: v for k, v in pkt.items() if v is not None} for pkt in p["packets"]]
    try:
        return security_group_info(
            p["provider"], addresses=p["addresses"], instance_ids=p["instance_ids"],
            network_interface_ids=p["network_interface_ids"], packets=packets, ephemeral_ports=p["ephemeral_ports"],
            region=p["region"], profile=p["profile"], access_key=p["access_key"], secret_key=p["secret_key"],
            session_token=p["session_token"], endpoint_url=p["endpoint_url"], retries=p["retries"])
    except MissingDependency as exc:
        # the traceback of the SDK's failed import, shown by fail_json like any traceback
        exc.result = {"exception": aws.BOTO3_IMPORT_ERROR if p["provider"] == "aws" else alicloud.SDK_IMPORT_ERROR}
        raise


def main():
    run_module(dict(
        provider=dict(type="str", required=True, choices=["aws", "alicloud"]),
        addresses=dict(type="list", elements="str", default=[]),
        instance_ids=dict(type="list", elements="str", default=[]),
        network_interface_ids=dict(type="list", elements="str", default=[]),
        packets=dict(type="list", elements="dict", default=[], options=dict(
            family=dict(type="str"), proto=dict(type="str", required=True, aliases=["protocol"]),
            src=dict(type="str", required=True, aliases=["source_address"]), dst=dict(type="str", aliases=["address"]),
            sport=dict(type="int"), dport=dict(type="int", aliases=["port"]), icmp_type=dict(type="raw"),
            icmp_code=dict(type="int"))),
        ephemeral_ports=dict(type="str", default="32768-60999"),
        region=dict(type="str", aliases=["aws_region", "ec2_region", "alicloud_region"]),
        profile=dict(type="str", aliases=["aws_profile"]),
        access_key=dict(type="str", no_log=True, aliases=["aws_access_key_id", "aws_access_key", "alicloud_access_key"]),
        secret_key=dict(type="str", no_log=True, aliases=["aws_secret_access_key", "aws_secret_key", "alicloud_secret_key"]),
        session_token=dict(type="str", no_log=True, aliases=["aws_session_token", "security_token", "alicloud_security_token"]),
        endpoint_url=dict(type="str", aliases=["aws_endpoint_url", "ec2_url"]),
        retries=dict(type="int", default=4),
    ), _read, warn=["warnings"])


if __name__ == "__main__":
    main()
