# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alibaba Cloud ECS: the instance / ENI behind an address and its security groups, read-only.

Uses the official SDK (``alibabacloud_ecs20140526`` on ``alibabacloud_tea_openapi``).  Security
group semantics (Alibaba Cloud ECS documentation, "security group rules"): the rules of every
group of the interface are sorted by priority (1 is tried first, 100 last); at equal priority a
Drop rule beats an Accept rule; the first matching rule decides; inbound traffic that no rule
accepts is denied; outbound traffic of a basic group is allowed by default; groups are stateful.
On a VPC interface the NIC type of a rule does not matter (it is always ``intranet``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import time
import traceback

from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import common
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    BackendUnavailable, InputError, MissingDependency,
)

try:
    from alibabacloud_ecs20140526 import models as ecs_models
    from alibabacloud_ecs20140526.client import Client as EcsClient
    from alibabacloud_tea_openapi import utils_models as openapi_models
    from darabonba.runtime import RuntimeOptions
    from Tea.exceptions import TeaException
    HAS_SDK = True
    SDK_IMPORT_ERROR = None
except ImportError:
    HAS_SDK = False
    SDK_IMPORT_ERROR = traceback.format_exc()

PROVIDER = "alicloud"
SG_BACKEND = "alicloud-security-group"
SDK_PACKAGE = "alibabacloud_ecs20140526 and alibabacloud_tea_openapi (pip install alibabacloud_ecs20140526)"

PERMISSIONS = ("ecs:DescribeInstances", "ecs:DescribeNetworkInterfaces", "ecs:DescribeSecurityGroupAttribute")

AUTH_CODES = ("InvalidAccessKeyId.NotFound", "InvalidAccessKeyId", "InvalidAccessKeyId.Inactive", "SignatureDoesNotMatch",
              "IncompleteSignature", "InvalidSecurityToken.Expired", "InvalidSecurityToken.Malformed",
              "InvalidSecurityToken.MismatchWithAccessKey")
DENIED_CODES = ("Forbidden.RAM", "Forbidden", "NoPermission", "Forbidden.NotAuthorized")
REGION_CODES = ("InvalidRegionId.NotFound", "InvalidRegionId.Malformed", "InvalidRegionId")
_REGION_RE = re.compile(r"^[a-z]{2}-[a-z0-9]+(-[a-z0-9]+)*$")

ENV = {
    "access_key": ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALICLOUD_ACCESS_KEY"),
    "secret_key": ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALICLOUD_SECRET_KEY"),
    "security_token": ("ALIBABA_CLOUD_SECURITY_TOKEN", "ALICLOUD_SECURITY_TOKEN"),
    "region": ("ALIBABA_CLOUD_REGION_ID", "ALICLOUD_REGION"),
}


def require_sdk():
    if not HAS_SDK:
        raise MissingDependency("the Alibaba Cloud ECS SDK", SDK_PACKAGE, reason="needed for provider alicloud")


def _env(name):
    for var in ENV[name]:
        if os.environ.get(var):
            return os.environ[var]
    return None


def _is_throttle(code):
    return code.startswith("Throttling") or code in ("ServiceUnavailable", "RequestLimitExceeded")


class Client:
    """A thin wrapper around the SDK client: maps errors, retries throttled calls, pages."""

    def __init__(self, region=None, access_key=None, secret_key=None, security_token=None, endpoint_url=None,
                 retries=4, retry_delay=1.0, timeout=30, sleep=time.sleep, permissions=PERMISSIONS):
        require_sdk()
        access_key = access_key or _env("access_key")
        secret_key = secret_key or _env("secret_key")
        security_token = security_token or _env("security_token")
        region = region or _env("region")
        if not access_key or not secret_key:
            raise BackendUnavailable("no Alibaba Cloud credentials: give access_key and secret_key or set "
                                     "ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET (or ALICLOUD_ACCESS_KEY/"
                                     "ALICLOUD_SECRET_KEY)")
        if not region:
            raise InputError("no Alibaba Cloud region: give region or set ALIBABA_CLOUD_REGION_ID (or ALICLOUD_REGION)")
        if not _REGION_RE.match(region):
            raise InputError("unknown Alibaba Cloud region %r (expected a region id such as cn-hangzhou)" % (region,))
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise InputError("invalid retries %r: expected an integer of at least 0" % (retries,))
        kwargs = {"access_key_id": access_key, "access_key_secret": secret_key, "region_id": region}
        if security_token:
            kwargs["security_token"] = security_token
        if endpoint_url:
            m = re.match(r"^(https?)://([^/]+)/?$", str(endpoint_url))
            if not m:
                raise InputError("invalid endpoint_url %r: expected http(s)://host[:port]" % (endpoint_url,))
            kwargs["protocol"], kwargs["endpoint"] = m.group(1), m.group(2)
        self.region = region
        self.max_attempts = retries + 1
        self.retry_delay = retry_delay
        self.timeout_ms = int(timeout * 1000)
        self.sleep = sleep
        self.permissions = tuple(permissions)  # named when a call is denied
        self.sdk = EcsClient(openapi_models.Config(**kwargs))
        self.endpoint = kwargs.get("endpoint") or "the ECS endpoint of %s" % region

    def call(self, action, **params):
        """Call ``action`` (e.g. ``DescribeInstances``) and return the response body as the API's JSON dict."""
        return self._send(action, getattr(ecs_models, action + "Request")(region_id=self.region, **params))

    def call_api(self, action, params):
        """Call ``action`` with its parameters named as in the API (``{"SecurityGroupId": ..., "Permissions":
        [{"IpProtocol": ...}]}``, the ``api.params`` of a fix); the region is the client's."""
        return self._send(action, getattr(ecs_models, action + "Request")().from_map(dict(params, RegionId=self.region)))

    def _send(self, action, request):
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()
        method = getattr(self.sdk, snake + "_with_options")
        attempt = 0
        while True:
            attempt += 1
            try:
                runtime = RuntimeOptions(read_timeout=self.timeout_ms, connect_timeout=self.timeout_ms)
                return method(request, runtime).body.to_map()
            except TeaException as exc:
                code = str(getattr(exc, "code", "") or "")
                if _is_throttle(code) and attempt < self.max_attempts:
                    self.sleep(min(self.retry_delay * (2 ** (attempt - 1)), 20))
                    continue
                raise self._error(action, code, getattr(exc, "message", str(exc)), attempt)
            except Exception as exc:  # the SDK raises plain exceptions for network failures
                raise BackendUnavailable("cannot reach %s for region %s calling ecs:%s (%s: %s)"
                                         % (self.endpoint, self.region, action, type(exc).__name__, exc))

    def _error(self, action, code, message, attempts):
        exc = self._error_for(action, code, message, attempts)
        exc.code = code  # the API's error code, for callers that tell them apart
        return exc

    def _error_for(self, action, code, message, attempts):
        api = "ecs:" + action
        if code in AUTH_CODES:
            return BackendUnavailable("Alibaba Cloud rejected the credentials (%s) calling %s in region %s: %s"
                                      % (code, api, self.region, message))
        if code in DENIED_CODES:
            return BackendUnavailable("permission denied for %s (%s: %s); this module needs %s"
                                      % (api, code, message, ", ".join(self.permissions)))
        if _is_throttle(code):
            return BackendUnavailable("Alibaba Cloud throttled %s in region %s (%s) and it still failed after %d attempts; "
                                      "retry later or raise retries" % (api, self.region, code, attempts))
        if code in REGION_CODES:
            return InputError("unknown Alibaba Cloud region %r (%s: %s)" % (self.region, code, message))
        if code.endswith(".NotFound") or code.endswith(".Malformed") or code.startswith("InvalidParameter"):
            return InputError("%s: %s (%s)" % (api, message, code))
        return BackendUnavailable("%s failed in region %s: %s: %s" % (api, self.region, code, message))

    def pages(self, action, path, **params):
        """Every item under ``path`` (e.g. ``("Instances", "Instance")``), following NextToken."""
        out, token = [], None
        for dummy in range(MAX_PAGES):
            body = self.call(action, next_token=token, **params) if token else self.call(action, **params)
            node = body
            for key in path:
                node = (node or {}).get(key)
            out.extend(node or [])
            token = body.get("NextToken")
            if not token:
                return out
        raise BackendUnavailable("ecs:%s returned more than %d pages (a NextToken that never ends?)"
                                 % (action, MAX_PAGES))


# every listing follows NextToken for at most this many pages, then fails naming the call: a
# server that always returns a NextToken cannot keep the module looping
MAX_PAGES = 1000


def _list(node, *path):
    for key in path:
        node = (node or {}).get(key)
    return list(node or [])


def _ports(text):
    """``80/80`` -> (80, 80); ``-1/-1`` -> None (all)."""
    m = re.match(r"^\s*(-?[0-9]+)\s*/\s*(-?[0-9]+)\s*$", str(text or "-1/-1"))
    if not m:
        raise InputError("invalid port range %r (expected FROM/TO such as 80/80)" % (text,))
    lo, hi = int(m.group(1)), int(m.group(2))
    if lo == -1 and hi == -1:
        return None
    if not (1 <= lo <= 65535 and 1 <= hi <= 65535) or lo > hi:
        raise InputError("invalid port range %r (ports are 1-65535, FROM not above TO; -1/-1 for all)" % (text,))
    return lo, hi


class Reader:
    def __init__(self, client):
        self.client = client
        self.region = client.region
        self.warnings = []
        self._groups = {}
        self._members = {}

    # ------------------------------------------------------------ finding interfaces

    def find(self, addresses=(), instance_ids=(), interface_ids=()):
        """Interface records (before rules): from ENIs, or from instances where the address is a public one."""
        found = []
        for address in addresses:
            ip = ipaddress.ip_address(address)
            enis = self.client.pages("DescribeNetworkInterfaces", ("NetworkInterfaceSets", "NetworkInterfaceSet"),
                                     private_ip_address=[str(ip)])
            items = [self._from_eni(e) for e in enis]
            if not items and ip.is_global:
                for param in ("public_ip_addresses", "eip_addresses"):
                    insts = self.client.pages("DescribeInstances", ("Instances", "Instance"), **{param: json.dumps([str(ip)])})
                    items = [self._from_instance(i) for i in insts]
                    if items:
                        break
            if not items:
                raise InputError("address %s belongs to no network interface or instance in region %s (searched private, "
                                 "public and EIP addresses)" % (address, self.region))
            found.extend(items)
        if interface_ids:
            enis = self.client.pages("DescribeNetworkInterfaces", ("NetworkInterfaceSets", "NetworkInterfaceSet"),
                                     network_interface_id=list(interface_ids))
            got = {e.get("NetworkInterfaceId") for e in enis}
            missing = [i for i in interface_ids if i not in got]
            if missing:
                raise InputError("network interface %s not found in region %s" % (", ".join(missing), self.region))
            found.extend(self._from_eni(e) for e in enis)
        if instance_ids:
            insts = self.client.pages("DescribeInstances", ("Instances", "Instance"), instance_ids=json.dumps(list(instance_ids)))
            got = {i.get("InstanceId") for i in insts}
            missing = [i for i in instance_ids if i not in got]
            if missing:
                raise InputError("instance %s not found in region %s" % (", ".join(missing), self.region))
            found.extend(self._from_instance(i) for i in insts)
        seen, out = set(), []
        for item in found:
            if item["id"] not in seen:
                seen.add(item["id"])
                out.append(item)
        return out

    def _from_eni(self, eni):
        private = [p.get("PrivateIpAddress") for p in _list(eni, "PrivateIpSets", "PrivateIpSet") if p.get("PrivateIpAddress")]
        if eni.get("PrivateIpAddress") and eni["PrivateIpAddress"] not in private:
            private.insert(0, eni["PrivateIpAddress"])
        private += [p.get("Ipv6Address") for p in _list(eni, "Ipv6Sets", "Ipv6Set") if p.get("Ipv6Address")]
        public = []
        for assoc in [eni.get("AssociatedPublicIp")] + [p.get("AssociatedPublicIp") for p in _list(eni, "PrivateIpSets", "PrivateIpSet")]:
            if assoc and assoc.get("PublicIpAddress") and assoc["PublicIpAddress"] not in public:
                public.append(assoc["PublicIpAddress"])
        return {"provider": PROVIDER, "region": self.region, "id": eni["NetworkInterfaceId"], "type": eni.get("Type"),
                "instance_id": eni.get("InstanceId") or (eni.get("Attachment") or {}).get("InstanceId"),
                "vpc_id": eni.get("VpcId"), "subnet_id": eni.get("VSwitchId"), "network_type": "vpc",
                "private_addresses": private, "public_addresses": public,
                "security_groups": [{"id": g, "name": None} for g in _list(eni, "SecurityGroupIds", "SecurityGroupId")],
                "network_acl": None}

    def _from_instance(self, inst):
        vpc = inst.get("VpcAttributes") or {}
        network_type = inst.get("InstanceNetworkType") or ("vpc" if vpc.get("VpcId") else "classic")
        private = _list(vpc, "PrivateIpAddress", "IpAddress") + _list(inst, "InnerIpAddress", "IpAddress")
        public = _list(inst, "PublicIpAddress", "IpAddress")
        eip = (inst.get("EipAddress") or {}).get("IpAddress")
        if eip and eip not in public:
            public.append(eip)
        primary = [n for n in _list(inst, "NetworkInterfaces", "NetworkInterface") if n.get("Type") in (None, "Primary")]
        return {"provider": PROVIDER, "region": self.region,
                "id": primary[0]["NetworkInterfaceId"] if primary and primary[0].get("NetworkInterfaceId") else inst["InstanceId"],
                "type": "Primary", "instance_id": inst["InstanceId"], "vpc_id": vpc.get("VpcId") or None,
                "subnet_id": vpc.get("VSwitchId") or None, "network_type": network_type,
                "private_addresses": private, "public_addresses": public,
                "security_groups": [{"id": g, "name": None} for g in _list(inst, "SecurityGroupIds", "SecurityGroupId")],
                "network_acl": None}

    # ------------------------------------------------------------ groups

    def group(self, group_id):
        if group_id not in self._groups:
            body = self.client.call("DescribeSecurityGroupAttribute", security_group_id=group_id)
            perms = _list(body, "Permissions", "Permission")
            token = body.get("NextToken")
            pages = 1
            while token:
                if pages >= MAX_PAGES:
                    raise BackendUnavailable("ecs:DescribeSecurityGroupAttribute of %s returned more than %d pages "
                                             "(a NextToken that never ends?)" % (group_id, MAX_PAGES))
                more = self.client.call("DescribeSecurityGroupAttribute", security_group_id=group_id, next_token=token)
                perms += _list(more, "Permissions", "Permission")
                token = more.get("NextToken")
                pages += 1
            body["Permissions"] = {"Permission": perms}
            self._groups[group_id] = body
        return self._groups[group_id]

    def group_members(self, group_id):
        if group_id not in self._members:
            addrs = []
            for eni in self.client.pages("DescribeNetworkInterfaces", ("NetworkInterfaceSets", "NetworkInterfaceSet"),
                                         security_group_id=group_id):
                addrs += self._from_eni(eni)["private_addresses"]
            self._members[group_id] = sorted(set(addrs))
        return self._members[group_id]

    # ------------------------------------------------------------ normalising

    def record(self, item):
        groups = [g["id"] for g in item["security_groups"]]
        bodies = {g: self.group(g) for g in groups}
        for g in item["security_groups"]:
            g["name"] = bodies[g["id"]].get("SecurityGroupName")
        item["ruleset"] = common.ruleset([self._table(item, bodies)])
        return item

    def _table(self, item, bodies):
        name = item["id"]
        entries = {"ingress": [], "egress": []}
        inner = []
        for order, group_id in enumerate(bodies):
            body = bodies[group_id]
            for index, perm in enumerate(_list(body, "Permissions", "Permission")):
                direction = str(perm.get("Direction") or "ingress").lower()
                if direction not in entries:
                    self.warnings.append("%s: rule with unknown direction %r skipped" % (group_id, perm.get("Direction")))
                    continue
                r = self._rule(item, group_id, index, direction, perm)
                policy = 0 if r["verdict"]["kind"] == "drop" else 1
                entries[direction].append(((r["origin"]["priority"], policy, order, index), r))
            if str(body.get("InnerAccessPolicy") or "").lower() == "accept":
                members = self.group_members(group_id)
                inner.append(common.rule([common.match("src", members)], "accept", {
                    "backend": SG_BACKEND, "family": "inet", "table": name, "chain": "ingress",
                    "handle": "%s/inner" % group_id, "group_id": group_id, "rule_id": None, "priority": None,
                    "text": "%s InnerAccessPolicy Accept: members of the group may talk to each other (%s)"
                            % (group_id, ", ".join(members) or "no members")}))
        label = "security group%s %s of %s" % ("s" if len(bodies) != 1 else "", ", ".join(
            "%s (%s)" % (g, b.get("SecurityGroupName")) for g, b in bodies.items()) or "(none)", name)
        ingress = [common.stateful_rule(SG_BACKEND, name, "ingress", "security groups")]
        ingress += [r for dummy, r in sorted(entries["ingress"], key=lambda e: e[0])] + inner
        egress = [common.stateful_rule(SG_BACKEND, name, "egress", "security groups")]
        egress += [r for dummy, r in sorted(entries["egress"], key=lambda e: e[0])]
        return common.table(SG_BACKEND, name, common.LAYER_SECURITY_GROUP, label, [
            common.chain("ingress", "input", ingress),
            common.chain("egress", "output", egress, policy="accept")], groups=list(bodies))

    def _rule(self, item, group_id, index, direction, perm):
        name = item["id"]
        key, prefix = ("src", "Source") if direction == "ingress" else ("dst", "Dest")
        matches = []
        try:
            proto = common.protocol_name(perm.get("IpProtocol") or "all")
        except InputError as exc:
            proto = None
            matches.append(common.unknown(str(exc)))
        ports = _ports(perm.get("PortRange"))
        matches += common.proto_matches(proto, ports, icmp=None)
        if perm.get("SourcePortRange") and direction == "ingress":
            sports = _ports(perm["SourcePortRange"])
            if sports is not None and proto is not None:
                matches.append(dict(common.match("sport", [sports[0] if sports[0] == sports[1] else list(sports)]),
                                    requires={"proto": [proto]}))
        v4 = perm.get(prefix + "CidrIp")
        v6 = perm.get("Ipv6%sCidrIp" % prefix)
        group_ref = perm.get(prefix + "GroupId")
        prefix_list = perm.get(prefix + "PrefixListId")
        if v4 or v6:
            peer = common.cidr(v4 or v6)
            matches.append(common.match(key, [peer]))
        elif group_ref:
            members = self.group_members(group_ref)
            peer = "security group %s (%s)" % (group_ref, ", ".join(members) or "no interface carries it")
            matches.append(common.match(key, members))
        elif prefix_list:
            peer = "prefix list %s" % prefix_list
            matches.append(common.unknown("prefix list %s is not resolved (its entries are not read)" % prefix_list))
        else:
            peer = "any"
        nic = str(perm.get("NicType") or "intranet").lower()
        if item.get("network_type") == "classic":
            own = item["public_addresses"] if nic == "internet" else item["private_addresses"]
            matches.append(common.match("dst" if key == "src" else "src", own))
        try:
            priority = int(perm.get("Priority") or 1)
        except (TypeError, ValueError):
            raise InputError("%s: invalid priority %r" % (group_id, perm.get("Priority")))
        policy = str(perm.get("Policy") or "Accept").lower()
        verdict = "drop" if policy == "drop" else "accept"
        rule_id = perm.get("SecurityGroupRuleId") or "%s#%d" % (group_id, index)
        text = "%s %s: priority %d %s %s %s %s (%s)" % (
            group_id, rule_id, priority, "Drop" if verdict == "drop" else "Accept", common.port_text(proto, ports),
            "from" if key == "src" else "to", peer, nic)
        if perm.get("Description"):
            text += " %s" % perm["Description"]
        return common.rule(matches, verdict, {
            "backend": SG_BACKEND, "family": "inet", "table": name, "chain": direction, "handle": rule_id,
            "group_id": group_id, "rule_id": rule_id, "priority": priority, "policy": verdict, "text": text})


def read(client, addresses=(), instance_ids=(), interface_ids=()):
    return common.guard_response("Alibaba Cloud ECS", _read, client, addresses, instance_ids, interface_ids)


def _read(client, addresses, instance_ids, interface_ids):
    reader = Reader(client)
    items = reader.find(addresses, instance_ids, interface_ids)
    return {"interfaces": [reader.record(i) for i in items], "warnings": reader.warnings}


# ---------------------------------------------------------------- fixes

def fix(step, packet, interface):
    """The Accept rule that lets exactly this flow in, placed before the rule that drops it."""
    groups = interface.get("security_groups") or []
    if not groups:
        return {"provider": PROVIDER, "layer": step["layer"], "target": None, "direction": "ingress", "rule": None,
                "api": None, "command": None, "note": "the interface has no security group to add a rule to"}
    group = groups[0]["id"]
    rule = step.get("rule") or {}
    src = common.host_cidr(packet["src"])
    if rule.get("policy") == "drop" and rule.get("priority"):
        priority = rule["priority"] - 1
        note = "priority %d is tried before the Drop rule %s at priority %d" % (priority, rule.get("rule_id"), rule["priority"])
    else:
        priority = 100
        note = "no rule drops it, so the lowest precedence (100) is enough and overrides no Drop rule"
    proto = packet["proto"]
    flow = proto if packet.get("dport") is None else "%s/%s" % (packet["dport"], proto)
    perm = {"Policy": "accept", "Priority": priority,
            "IpProtocol": {"ipv6-icmp": "ICMPv6"}.get(proto, proto.upper()),
            "PortRange": "%d/%d" % (packet["dport"], packet["dport"]) if packet.get("dport") is not None else "-1/-1",
            ("Ipv6SourceCidrIp" if ":" in src else "SourceCidrIp"): src,
            "Description": "netdiag: allow %s from %s" % (flow, src)}
    data = {"protocol": proto, "from_port": packet.get("dport"), "to_port": packet.get("dport"), "source": src,
            "action": "allow", "priority": priority}
    if priority < 1:
        return {"provider": PROVIDER, "layer": step["layer"], "target": group, "direction": "ingress", "rule": data,
                "api": None, "command": None,
                "note": "the Drop rule %s has priority 1, which no Accept rule can beat (Drop wins at equal priority): "
                        "change or remove that rule" % rule.get("rule_id")}
    command = "aliyun ecs AuthorizeSecurityGroup --RegionId %s --SecurityGroupId %s %s" % (
        shlex.quote(str(interface.get("region"))), group,
        " ".join("--Permissions.1.%s %s" % (k, shlex.quote(str(v))) for k, v in perm.items()))
    return {"provider": PROVIDER, "layer": step["layer"], "target": group, "direction": "ingress", "rule": data,
            "api": {"operation": "AuthorizeSecurityGroup", "method": "authorize_security_group",
                    "params": {"RegionId": interface.get("region"), "SecurityGroupId": group, "Permissions": [perm]}},
            "command": command, "note": note + "; added to %s, the interface's first security group" % group}
