# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWS: the network interfaces behind an address, their security groups and the subnet's network ACL.

Read-only (``ec2:Describe*`` and ``ec2:GetManagedPrefixListEntries``).  Everything read is
normalised into the common rule model (see ``cloud.common``); ``fix()`` turns a denial into the
ingress (or network ACL) rule that allows exactly that flow, as data, boto3 call and CLI command.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import traceback

from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import common
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    BackendUnavailable, InputError, MissingDependency,
)
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.model import L4PROTO_NUMBERS

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError,
        PartialCredentialsError, ProfileNotFound,
    )
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError:
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()

PROVIDER = "aws"
SG_BACKEND = "aws-security-group"
ACL_BACKEND = "aws-network-acl"

# The calls this reader makes, i.e. the IAM permissions it needs.
PERMISSIONS = (
    "ec2:DescribeNetworkInterfaces", "ec2:DescribeAddresses", "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules", "ec2:DescribeNetworkAcls", "ec2:GetManagedPrefixListEntries",
)

AUTH_CODES = ("AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
              "ExpiredToken", "RequestExpired", "InvalidAccessKeyId", "IncompleteSignature", "MissingAuthenticationToken")
DENIED_CODES = ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException")
THROTTLE_CODES = ("Throttling", "ThrottlingException", "RequestLimitExceeded", "ThrottledException",
                  "TooManyRequestsException", "RequestThrottled", "RequestThrottledException")
REGION_CODES = ("InvalidRegion", "UnknownRegion", "OptInRequired")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")
_PROTO_NUMBER = {name: number for number, name in L4PROTO_NUMBERS.items()}


def require_boto3():
    if not HAS_BOTO3:
        raise MissingDependency("boto3", "boto3 and botocore (pip install boto3)", reason="needed for provider aws")


def _api_name(method):
    return "".join(word.title() for word in method.split("_"))


def connect(region=None, profile=None, access_key=None, secret_key=None, session_token=None,
            endpoint_url=None, retries=4, connect_timeout=10, read_timeout=30):
    """An EC2 client; credentials and region come from the arguments, else boto3's usual chain
    (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE``,
    ``AWS_REGION``/``AWS_DEFAULT_REGION``, the shared config files, instance roles).

    Throttled calls are retried ``retries`` times (botocore's standard mode: exponential backoff
    with jitter, at most 20 s between attempts).
    """
    require_boto3()
    if (access_key is None) != (secret_key is None):
        raise InputError("access_key and secret_key go together: give both or neither")
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise InputError("invalid retries %r: expected an integer of at least 0" % (retries,))
    try:
        session = boto3.Session(profile_name=profile or None, aws_access_key_id=access_key,
                                aws_secret_access_key=secret_key, aws_session_token=session_token)
    except ProfileNotFound:
        raise InputError("AWS profile %r not found in the shared config/credentials files" % (profile,))
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or session.region_name
    check_region(session, region)
    if endpoint_url is not None and not re.match(r"^https?://", str(endpoint_url)):
        raise InputError("invalid endpoint_url %r: expected http(s)://host[:port]" % (endpoint_url,))
    config = Config(retries={"mode": "standard", "total_max_attempts": retries + 1},
                    connect_timeout=connect_timeout, read_timeout=read_timeout)
    try:
        client = session.client("ec2", region_name=region, endpoint_url=endpoint_url, config=config)
    except NoRegionError:
        raise InputError("no AWS region: give region or set AWS_REGION")
    except BotoCoreError as exc:
        raise BackendUnavailable("cannot create the EC2 client for region %r: %s" % (region, exc))
    return client, region


def check_region(session, region):
    if not region:
        raise InputError("no AWS region: give region or set AWS_REGION / AWS_DEFAULT_REGION")
    known = set()
    for partition in session.get_available_partitions():
        known.update(session.get_available_regions("ec2", partition_name=partition))
    if region in known:
        return
    if not _REGION_RE.match(region):
        raise InputError("unknown AWS region %r (expected a region name such as eu-west-1)" % (region,))
    # A well-formed name this botocore does not know yet (a new region): let the endpoint decide.


class Reader:
    """Reads the interfaces for addresses / instance ids / interface ids and builds their records."""

    def __init__(self, client, region):
        self.client = client
        self.region = region
        self.warnings = []
        self._groups = {}
        self._group_rules = {}
        self._members = {}
        self._prefix_lists = {}
        self._acls = {}

    # ------------------------------------------------------------ API calls

    def _call(self, method, tolerate=(), **kwargs):
        try:
            return getattr(self.client, method)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in tolerate:
                return None
            raise self._error(method, exc)
        except (BotoCoreError, ValueError) as exc:
            raise self._error(method, exc)

    def _pages(self, method, key, **kwargs):
        out = []
        try:
            if self.client.can_paginate(method):
                for page in self.client.get_paginator(method).paginate(**kwargs):
                    out.extend(page.get(key) or [])
                return out
        except ClientError as exc:
            raise self._error(method, exc)
        except (BotoCoreError, ValueError) as exc:
            raise self._error(method, exc)
        return list((self._call(method, **kwargs) or {}).get(key) or [])

    def _error(self, method, exc):
        api = "ec2:" + _api_name(method)
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return BackendUnavailable("no usable AWS credentials for %s (%s): give access_key and secret_key or a "
                                      "profile, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE" % (api, exc))
        if isinstance(exc, EndpointConnectionError):
            return BackendUnavailable("cannot reach the EC2 endpoint for region %r (%s): is the region right and the "
                                      "endpoint reachable?" % (self.region, exc))
        if not isinstance(exc, ClientError):
            return BackendUnavailable("%s failed in region %s: %s" % (api, self.region, exc))
        err = exc.response.get("Error", {})
        code, message = err.get("Code", ""), err.get("Message", "")
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
        if code in AUTH_CODES:
            return BackendUnavailable("AWS rejected the credentials (%s: %s) calling %s in region %s"
                                      % (code, message, api, self.region))
        if code in DENIED_CODES:
            return BackendUnavailable("permission denied for %s (%s: %s); this module needs %s"
                                      % (api, code, message, ", ".join(PERMISSIONS)))
        if code in THROTTLE_CODES:
            return BackendUnavailable("AWS throttled %s in region %s (%s) and it still failed after %d attempts; "
                                      "retry later or raise retries" % (api, self.region, code, attempts))
        if code in REGION_CODES:
            return InputError("region %r cannot be used (%s: %s)" % (self.region, code, message))
        if code.endswith(".NotFound") or code.endswith(".Malformed") or code.startswith("InvalidParameter"):
            return InputError("%s: %s (%s)" % (api, message, code))
        return BackendUnavailable("%s failed in region %s: %s: %s" % (api, self.region, code, message))

    # ------------------------------------------------------------ finding interfaces

    def find(self, addresses=(), instance_ids=(), interface_ids=()):
        """Raw ENIs for the targets, de-duplicated in order.  Raises InputError for a target with none."""
        enis = []
        for address in addresses:
            found = self._by_address(address)
            if not found:
                raise InputError("address %s belongs to no network interface in region %s (searched private, "
                                 "public and Elastic IP addresses)" % (address, self.region))
            enis.extend(found)
        if interface_ids:
            enis.extend(self._pages("describe_network_interfaces", "NetworkInterfaces",
                                    NetworkInterfaceIds=list(interface_ids)))
        for instance_id in instance_ids:
            found = self._pages("describe_network_interfaces", "NetworkInterfaces",
                                Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])
            if not found:
                raise InputError("instance %s has no network interface in region %s (or does not exist there)"
                                 % (instance_id, self.region))
            enis.extend(found)
        seen, out = set(), []
        for eni in enis:
            if eni["NetworkInterfaceId"] not in seen:
                seen.add(eni["NetworkInterfaceId"])
                out.append(eni)
        return out

    def _by_address(self, address):
        ip = ipaddress.ip_address(address)
        if ip.version == 6:
            return self._pages("describe_network_interfaces", "NetworkInterfaces",
                               Filters=[{"Name": "ipv6-addresses.ipv6-address", "Values": [str(ip)]}])
        found = self._pages("describe_network_interfaces", "NetworkInterfaces",
                            Filters=[{"Name": "addresses.private-ip-address", "Values": [str(ip)]}])
        if found or not ip.is_global:
            return found
        eip = self._call("describe_addresses", tolerate=("InvalidAddress.NotFound",), PublicIps=[str(ip)])
        for addr in (eip or {}).get("Addresses") or []:
            if addr.get("NetworkInterfaceId"):
                return self._pages("describe_network_interfaces", "NetworkInterfaces",
                                   NetworkInterfaceIds=[addr["NetworkInterfaceId"]])
        return self._pages("describe_network_interfaces", "NetworkInterfaces",
                           Filters=[{"Name": "association.public-ip", "Values": [str(ip)]}])

    # ------------------------------------------------------------ groups, members, prefix lists, ACLs

    def _load_groups(self, group_ids):
        missing = [g for g in group_ids if g not in self._groups]
        if not missing:
            return
        for group in self._pages("describe_security_groups", "SecurityGroups", GroupIds=missing):
            self._groups[group["GroupId"]] = group
            self._group_rules[group["GroupId"]] = []
        rules = self._pages("describe_security_group_rules", "SecurityGroupRules",
                            Filters=[{"Name": "group-id", "Values": missing}])
        for r in rules:
            self._group_rules.setdefault(r["GroupId"], []).append(r)
        for rules_of in self._group_rules.values():
            rules_of.sort(key=lambda r: (r.get("IsEgress", False), r.get("SecurityGroupRuleId", "")))

    def group_members(self, group_id):
        """Private addresses of the interfaces that carry ``group_id`` (what a group reference allows)."""
        if group_id not in self._members:
            addrs = []
            for eni in self._pages("describe_network_interfaces", "NetworkInterfaces",
                                   Filters=[{"Name": "group-id", "Values": [group_id]}]):
                addrs.extend(p["PrivateIpAddress"] for p in eni.get("PrivateIpAddresses") or [] if p.get("PrivateIpAddress"))
                addrs.extend(p["Ipv6Address"] for p in eni.get("Ipv6Addresses") or [] if p.get("Ipv6Address"))
            self._members[group_id] = sorted(set(addrs))
        return self._members[group_id]

    def prefix_list(self, pl_id):
        """CIDRs of a managed prefix list, or a str (the reason) when they cannot be read."""
        if pl_id not in self._prefix_lists:
            try:
                entries = self._pages("get_managed_prefix_list_entries", "Entries", PrefixListId=pl_id)
                self._prefix_lists[pl_id] = [common.cidr(e["Cidr"]) for e in entries]
            except (BackendUnavailable, InputError) as exc:
                self._prefix_lists[pl_id] = "prefix list %s could not be read: %s" % (pl_id, exc)
                self.warnings.append(self._prefix_lists[pl_id])
        return self._prefix_lists[pl_id]

    def subnet_acl(self, subnet_id):
        if subnet_id not in self._acls:
            acls = self._pages("describe_network_acls", "NetworkAcls",
                               Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
            self._acls[subnet_id] = acls[0] if acls else None
            if not acls:
                self.warnings.append("no network ACL is associated with subnet %s (not modelled)" % subnet_id)
        return self._acls[subnet_id]

    # ------------------------------------------------------------ normalising

    def record(self, eni):
        """The interface record: identity, addresses, groups, ACL and the rule model of both layers."""
        eni_id = eni["NetworkInterfaceId"]
        groups = [g["GroupId"] for g in eni.get("Groups") or []]
        self._load_groups(groups)
        private = [p["PrivateIpAddress"] for p in eni.get("PrivateIpAddresses") or [] if p.get("PrivateIpAddress")]
        private += [p["Ipv6Address"] for p in eni.get("Ipv6Addresses") or [] if p.get("Ipv6Address")]
        if eni.get("PrivateIpAddress") and eni["PrivateIpAddress"] not in private:
            private.insert(0, eni["PrivateIpAddress"])
        public = []
        for assoc in [eni.get("Association")] + [p.get("Association") for p in eni.get("PrivateIpAddresses") or []]:
            if assoc and assoc.get("PublicIp") and assoc["PublicIp"] not in public:
                public.append(assoc["PublicIp"])
        tables = [self._sg_table(eni_id, groups)]
        acl = self.subnet_acl(eni["SubnetId"]) if eni.get("SubnetId") else None
        if acl is not None:
            tables.insert(0, self._acl_table(acl, eni["SubnetId"]))
        return {
            "provider": PROVIDER, "region": self.region, "id": eni_id, "type": eni.get("InterfaceType"),
            "instance_id": (eni.get("Attachment") or {}).get("InstanceId"), "vpc_id": eni.get("VpcId"),
            "subnet_id": eni.get("SubnetId"), "private_addresses": private, "public_addresses": public,
            "security_groups": [{"id": g, "name": self._groups.get(g, {}).get("GroupName")} for g in groups],
            "network_acl": None if acl is None else {"id": acl["NetworkAclId"], "default": bool(acl.get("IsDefault"))},
            "ruleset": common.ruleset(tables),
        }

    def _sg_table(self, eni_id, groups):
        label = "security group%s %s of %s" % (
            "s" if len(groups) != 1 else "",
            ", ".join("%s (%s)" % (g, self._groups.get(g, {}).get("GroupName")) for g in groups) or "(none)", eni_id)
        ingress = [common.stateful_rule(SG_BACKEND, eni_id, "ingress", "security groups")]
        egress = [common.stateful_rule(SG_BACKEND, eni_id, "egress", "security groups")]
        for group_id in groups:
            for r in self._group_rules.get(group_id, []):
                chain = "egress" if r.get("IsEgress") else "ingress"
                (egress if chain == "egress" else ingress).append(self._sg_rule(eni_id, chain, r))
        return common.table(SG_BACKEND, eni_id, common.LAYER_SECURITY_GROUP, label, [
            common.chain("ingress", "input", ingress), common.chain("egress", "output", egress)],
            groups=list(groups))

    def _sg_rule(self, eni_id, chain, r):
        key = "dst" if chain == "egress" else "src"
        matches = []
        try:
            proto = common.protocol_name(r.get("IpProtocol", "-1"))
        except InputError as exc:
            proto = None
            matches.append(common.unknown(str(exc)))
        lo, hi = r.get("FromPort", -1), r.get("ToPort", -1)
        ports = None if lo in (None, -1) else (lo, hi)
        matches += common.proto_matches(proto, ports, icmp=(lo, hi) if proto in ("icmp", "ipv6-icmp") else None)
        ref = r.get("ReferencedGroupInfo") or {}
        if r.get("CidrIpv4") or r.get("CidrIpv6"):
            peer = common.cidr(r.get("CidrIpv4") or r.get("CidrIpv6"))
            matches.append(common.match(key, [peer]))
        elif r.get("PrefixListId"):
            peer = "prefix list %s" % r["PrefixListId"]
            cidrs = self.prefix_list(r["PrefixListId"])
            matches.append(common.unknown(cidrs) if isinstance(cidrs, str) else common.match(key, cidrs))
        elif ref.get("GroupId"):
            peer = "security group %s" % ref["GroupId"]
            if ref.get("VpcPeeringConnectionId"):
                matches.append(common.unknown("the rule references group %s across peering connection %s, whose "
                                              "members cannot be listed from here" % (ref["GroupId"], ref["VpcPeeringConnectionId"])))
            else:
                members = self.group_members(ref["GroupId"])
                peer += " (%s)" % (", ".join(members) if members else "no interface carries it")
                matches.append(common.match(key, members))
        else:
            peer = "?"
            matches.append(common.unknown("rule %s has no peer the model knows" % r.get("SecurityGroupRuleId")))
        text = "%s %s: allow %s %s %s" % (r["GroupId"], r.get("SecurityGroupRuleId"), common.port_text(proto, ports),
                                          "to" if chain == "egress" else "from", peer)
        if r.get("Description"):
            text += " (%s)" % r["Description"]
        return common.rule(matches, "accept", {
            "backend": SG_BACKEND, "family": "inet", "table": eni_id, "chain": chain,
            "handle": r.get("SecurityGroupRuleId"), "group_id": r["GroupId"], "rule_id": r.get("SecurityGroupRuleId"),
            "text": text})

    def _acl_table(self, acl, subnet_id):
        acl_id = acl["NetworkAclId"]
        chains = {"inbound": [], "outbound": []}
        for e in sorted(acl.get("Entries") or [], key=lambda e: e["RuleNumber"]):
            chain = "outbound" if e.get("Egress") else "inbound"
            chains[chain].append(self._acl_rule(acl_id, chain, e))
        label = "network ACL %s of %s" % (acl_id, subnet_id)
        return common.table(ACL_BACKEND, acl_id, common.LAYER_NETWORK_ACL, label, [
            common.chain("inbound", "prerouting", chains["inbound"]),
            common.chain("outbound", "postrouting", chains["outbound"])], subnet_id=subnet_id)

    def _acl_rule(self, acl_id, chain, e):
        key = "dst" if chain == "outbound" else "src"
        matches = []
        try:
            proto = common.protocol_name(e.get("Protocol", "-1"))
        except InputError as exc:
            proto = None
            matches.append(common.unknown(str(exc)))
        pr = e.get("PortRange") or {}
        ports = (pr["From"], pr["To"]) if "From" in pr else None
        icmp = e.get("IcmpTypeCode") or {}
        matches += common.proto_matches(proto, ports, icmp=(icmp.get("Type"), icmp.get("Code")) if icmp else None)
        peer = common.cidr(e.get("CidrBlock") or e.get("Ipv6CidrBlock"))
        matches.append(common.match(key, [peer]))
        number = e["RuleNumber"]
        action = "accept" if e.get("RuleAction") == "allow" else "drop"
        text = "%s %s rule %s: %s %s %s %s" % (
            acl_id, chain, "*" if number == 32767 else number, e.get("RuleAction"), common.port_text(proto, ports),
            "to" if chain == "outbound" else "from", peer)
        return common.rule(matches, action, {
            "backend": ACL_BACKEND, "family": "inet", "table": acl_id, "chain": chain, "handle": number,
            "acl_id": acl_id, "rule_number": number, "text": text})


def read(client, region, addresses=(), instance_ids=(), interface_ids=()):
    """``{"interfaces": [RECORD...], "warnings": [...]}`` for the targets (see ``Reader.record``)."""
    require_boto3()
    return common.guard_response("AWS EC2", _read, client, region, addresses, instance_ids, interface_ids)


def _read(client, region, addresses, instance_ids, interface_ids):
    reader = Reader(client, region)
    enis = reader.find(addresses, instance_ids, interface_ids)
    records = [reader.record(eni) for eni in enis]
    return {"interfaces": records, "warnings": reader.warnings}


# ---------------------------------------------------------------- fixes

def _free_rule_number(used, below):
    """The highest free rule number under ``below`` (so the new rule is tried just before it)."""
    if below >= 32767:
        top = max([n for n in used if n < 32767] or [0])
        start = min(((top // 10) + 1) * 10, 32766)
        candidates = list(range(start, 32767)) + list(range(start - 1, 0, -1))
    else:
        candidates = range(below - 1, 0, -1)
    for n in candidates:
        if n not in used:
            return n
    return None


def fix(step, packet, interface):
    """The change that allows exactly this flow at the layer of ``step`` (a denial)."""
    region = interface.get("region")
    proto = packet["proto"]
    src = common.host_cidr(packet["src"])
    v6 = ":" in src
    if step["layer"] == common.LAYER_SECURITY_GROUP:
        groups = interface.get("security_groups") or []
        if not groups:
            return {"provider": PROVIDER, "layer": step["layer"], "target": None, "direction": "ingress", "rule": None,
                    "api": None, "command": None, "note": "the interface has no security group to add a rule to"}
        group = groups[0]["id"]
        perm = {"IpProtocol": proto if proto in ("tcp", "udp", "icmp") else str(_PROTO_NUMBER.get(proto, proto))}
        if proto in ("tcp", "udp"):
            perm["FromPort"] = perm["ToPort"] = packet["dport"]
        elif proto in ("icmp", "ipv6-icmp"):
            perm["FromPort"], perm["ToPort"] = packet.get("icmp_type", 8 if not v6 else 128), -1
        desc = "netdiag: allow %s from %s" % (_flow(packet), src)
        if v6:
            perm["Ipv6Ranges"] = [{"CidrIpv6": src, "Description": desc}]
        else:
            perm["IpRanges"] = [{"CidrIp": src, "Description": desc}]
        params = {"GroupId": group, "IpPermissions": [perm]}
        command = "aws ec2 authorize-security-group-ingress --region %s --group-id %s --ip-permissions %s" % (
            shlex.quote(str(region)), group, shlex.quote(json.dumps([perm], separators=(",", ":"))))
        return {"provider": PROVIDER, "layer": step["layer"], "target": group, "direction": "ingress",
                "rule": {"protocol": proto, "from_port": perm.get("FromPort"), "to_port": perm.get("ToPort"),
                         "source": src, "action": "allow"},
                "api": {"operation": "AuthorizeSecurityGroupIngress", "method": "authorize_security_group_ingress",
                        "params": params},
                "command": command, "note": "added to %s, the interface's first security group" % group}
    # network ACL: inbound packet, or return traffic on the client's ports
    acl = interface["network_acl"]["id"]
    egress = step["direction"] == "return"
    table = next(t for t in interface["ruleset"]["tables"] if t["name"] == acl)
    chain = next(c for c in table["chains"] if c["name"] == ("outbound" if egress else "inbound"))
    used = {r["origin"].get("rule_number") for r in chain["rules"]}
    deny_at = (step.get("rule") or {}).get("rule_number") or 32767
    number = _free_rule_number(used, deny_at)
    entry = {"NetworkAclId": acl, "RuleNumber": number, "Protocol": str(_PROTO_NUMBER.get(proto, -1)),
             "RuleAction": "allow", "Egress": egress}
    entry["Ipv6CidrBlock" if v6 else "CidrBlock"] = src
    if proto in ("tcp", "udp"):
        lo, hi = (step["denied_ports"][0][0], step["denied_ports"][-1][1]) if egress else (packet["dport"],) * 2
        entry["PortRange"] = {"From": lo, "To": hi}
    elif proto in ("icmp", "ipv6-icmp"):
        entry["IcmpTypeCode"] = {"Type": -1, "Code": -1} if egress else {"Type": packet.get("icmp_type", 8), "Code": -1}
    data = {"protocol": proto, "from_port": (entry.get("PortRange") or {}).get("From"),
            "to_port": (entry.get("PortRange") or {}).get("To"), ("destination" if egress else "source"): src,
            "action": "allow", "rule_number": number}
    if number is None:
        return {"provider": PROVIDER, "layer": step["layer"], "target": acl, "direction": "egress" if egress else "ingress",
                "rule": data, "api": None, "command": None,
                "note": "no free rule number below %s: edit that rule instead" % deny_at}
    command = "aws ec2 create-network-acl-entry --region %s --network-acl-id %s %s --rule-number %d --protocol %s " \
              "--rule-action allow --%s %s" % (
                  shlex.quote(str(region)), acl, "--egress" if egress else "--ingress", number, entry["Protocol"],
                  "ipv6-cidr-block" if v6 else "cidr-block", src)
    if "PortRange" in entry:
        command += " --port-range From=%d,To=%d" % (entry["PortRange"]["From"], entry["PortRange"]["To"])
    if "IcmpTypeCode" in entry:
        command += " --icmp-type-code Type=%d,Code=%d" % (entry["IcmpTypeCode"]["Type"], entry["IcmpTypeCode"]["Code"])
    note = "rule %d is tried before %s" % (number, "the implicit deny (*)" if deny_at == 32767 else "rule %d" % deny_at)
    if egress:
        note += "; network ACLs are stateless, so the replies to the client's ephemeral ports need their own rule"
    return {"provider": PROVIDER, "layer": step["layer"], "target": acl, "direction": "egress" if egress else "ingress",
            "rule": data, "api": {"operation": "CreateNetworkAclEntry", "method": "create_network_acl_entry", "params": entry},
            "command": command, "note": note}


def _flow(packet):
    if packet.get("dport") is not None:
        return "%s/%s" % (packet["dport"], packet["proto"])
    return packet["proto"]
