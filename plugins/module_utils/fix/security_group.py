# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Add (or remove) the minimal ingress rule of an AWS security group.

The rule allows one flow: a protocol, a port (or range, or an ICMP type), from one address as a /32 or
/128 (or a CIDR the caller gives).  A rule from anywhere (``0.0.0.0/0``, ``::/0``) is refused unless the
caller asks for it by name (``allow_anywhere``).  :func:`ensure` reads the group, changes only what is
missing (or, for ``absent``, present), and returns the group's ingress rules before and after as the diff.

The EC2 client is passed in (``cloud/aws.connect`` builds it), so this file needs no SDK of its own.
The Alibaba Cloud writer (``fix/alicloud_security_group.py``) shares :func:`normalize_request` and :func:`diff_text`.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    BackendUnavailable, InputError, NetdiagError)

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # the module reports boto3 missing before a client exists
    BotoCoreError = ClientError = ()

PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6")
_API_PROTOCOL = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "icmpv6"}
_GROUP_RE = re.compile(r"^sg-[0-9a-zA-Z]{1,32}$")

# The EC2 connection options of the modules that change AWS (documented by doc fragment netdiag.reachability.aws).
AWS_CONNECTION_SPEC = dict(
    region=dict(type="str", aliases=["aws_region", "ec2_region"]),
    profile=dict(type="str", aliases=["aws_profile"]),
    access_key=dict(type="str", no_log=True, aliases=["aws_access_key_id", "aws_access_key"]),
    secret_key=dict(type="str", no_log=True, aliases=["aws_secret_access_key", "aws_secret_key"]),
    session_token=dict(type="str", no_log=True, aliases=["aws_session_token", "security_token"]),
    endpoint_url=dict(type="str", aliases=["aws_endpoint_url", "ec2_url"]),
    retries=dict(type="int", default=4),
)


class RuleTooWide(NetdiagError):
    """A rule from anywhere was asked for without allow_anywhere."""


def _ports(value, protocol):
    if protocol in ("icmp", "icmpv6"):
        return None
    text = str(value).strip() if value is not None and not isinstance(value, bool) else ""
    m = re.match(r"^(\d{1,5})(?:-(\d{1,5}))?$", text)
    if not m:
        raise InputError("invalid port %r for protocol %s (expected PORT or FIRST-LAST, 1-65535)" % (value, protocol))
    first, last = int(m.group(1)), int(m.group(2) or m.group(1))
    if not 1 <= first <= last <= 65535:
        raise InputError("invalid port %r for protocol %s (expected PORT or FIRST-LAST, 1-65535)" % (value, protocol))
    return first, last


def normalize_request(group_id, protocol, port=None, source=None, cidr=None, icmp_type=None, state="present",
                      allow_anywhere=False, description=None):
    """The request in one form; every error names the bad value."""
    if not isinstance(group_id, str) or not _GROUP_RE.match(group_id):
        raise InputError("invalid group_id %r (expected sg-...)" % (group_id,))
    flow = normalize_flow(protocol, port, source, cidr, icmp_type, state, allow_anywhere, group_id)
    if description is not None and (not isinstance(description, str) or len(description) > 255):
        raise InputError("invalid description %r (at most 255 characters)" % (description,))
    ports = (flow["from_port"], flow["to_port"])
    return dict(flow, group_id=group_id, description=description or "netdiag: allow %s from %s" % (
        _flow_text(flow["protocol"], _port_text(ports, flow["protocol"]), flow["from_port"]), flow["cidr"]))


def normalize_flow(protocol, port=None, source=None, cidr=None, icmp_type=None, state="present", allow_anywhere=False,
                   target="the group"):
    """The flow a rule allows: protocol, from_port/to_port (ICMP: type and -1), cidr, state."""
    protocol = str(protocol or "").lower()
    if protocol in ("ipv6-icmp", "icmp6"):
        protocol = "icmpv6"
    if protocol not in PROTOCOLS:
        raise InputError("invalid protocol %r (expected one of %s)" % (protocol, ", ".join(PROTOCOLS)))
    if state not in ("present", "absent"):
        raise InputError("invalid state %r (expected present or absent)" % (state,))
    if (source is None) == (cidr is None):
        raise InputError("give exactly one of source (the client's address, allowed as /32 or /128) and cidr "
                         "(got source %r, cidr %r)" % (source, cidr))
    if source is not None:
        try:
            ip = ipaddress.ip_address(str(source).strip())
        except ValueError:
            raise InputError("invalid source %r (expected one IP address; for a network use cidr)" % (source,))
        net = ipaddress.ip_network("%s/%d" % (ip, ip.max_prefixlen))
    else:
        try:
            net = ipaddress.ip_network(str(cidr).strip())
        except ValueError:
            raise InputError("invalid cidr %r (expected a network such as 10.0.1.0/24, without host bits)" % (cidr,))
    if net.prefixlen == 0 and not allow_anywhere and state == "present":
        raise RuleTooWide("refusing to allow %s from anywhere (%s) in %s: give the client's address as source, a "
                          "narrower cidr, or set allow_anywhere=true if every address on the internet should reach it"
                          % (_flow_text(protocol, port, icmp_type), net, target))
    ports = _ports(port, protocol)
    if protocol in ("icmp", "icmpv6"):
        if port is not None:
            raise InputError("port %r is not for protocol %s (give icmp_type)" % (port, protocol))
        if icmp_type is None:
            icmp_type = 8 if protocol == "icmp" else 128
        if isinstance(icmp_type, bool) or not isinstance(icmp_type, int) or not -1 <= icmp_type <= 255:
            raise InputError("invalid icmp_type %r (expected 0-255, or -1 for every type)" % (icmp_type,))
        ports = (icmp_type, -1)
    elif icmp_type is not None:
        raise InputError("icmp_type %r is only for protocol icmp or icmpv6 (protocol is %s)" % (icmp_type, protocol))
    if (net.version == 6) != (protocol == "icmpv6") and protocol in ("icmp", "icmpv6"):
        raise InputError("protocol %s does not go with %s address %s" % (protocol, "an IPv6" if net.version == 6 else "an IPv4", net))
    return {"protocol": protocol, "from_port": ports[0], "to_port": ports[1], "cidr": str(net), "state": state}


def _port_text(ports, protocol):
    if protocol in ("icmp", "icmpv6"):
        return None
    return str(ports[0]) if ports[0] == ports[1] else "%d-%d" % ports


def _flow_text(protocol, port, icmp_type=None):
    if protocol in ("icmp", "icmpv6"):
        return "%s%s" % (protocol, "" if icmp_type is None else " type %s" % icmp_type)
    return "%s/%s" % (port, protocol)


def permission(request):
    """The IpPermissions entry of the request (for authorize/revoke)."""
    perm = {"IpProtocol": _API_PROTOCOL[request["protocol"]], "FromPort": request["from_port"], "ToPort": request["to_port"]}
    if ":" in request["cidr"]:
        perm["Ipv6Ranges"] = [{"CidrIpv6": request["cidr"], "Description": request["description"]}]
    else:
        perm["IpRanges"] = [{"CidrIp": request["cidr"], "Description": request["description"]}]
    return perm


def rule_lines(permissions):
    """One sorted line per (protocol, ports, source) of a group's IpPermissions."""
    lines = []
    for perm in permissions or []:
        proto = str(perm.get("IpProtocol"))
        proto = "all" if proto == "-1" else proto
        lo, hi = perm.get("FromPort"), perm.get("ToPort")
        if proto in ("icmp", "icmpv6"):
            ports = "type %s" % ("any" if lo in (None, -1) else lo)
        elif proto == "all" or lo is None:
            ports = "all ports"
        else:
            ports = str(lo) if lo == hi else "%s-%s" % (lo, hi)
        sources = [r.get("CidrIp") for r in perm.get("IpRanges") or []] + \
                  [r.get("CidrIpv6") for r in perm.get("Ipv6Ranges") or []] + \
                  ["prefix list %s" % r.get("PrefixListId") for r in perm.get("PrefixListIds") or []] + \
                  ["group %s" % r.get("GroupId") for r in perm.get("UserIdGroupPairs") or []]
        for src in sources:
            lines.append("ingress %s %s from %s" % (proto, ports, src))
    return sorted(lines)


def _has(permissions, request):
    key = "Ipv6Ranges" if ":" in request["cidr"] else "IpRanges"
    field = "CidrIpv6" if key == "Ipv6Ranges" else "CidrIp"
    for perm in permissions or []:
        if str(perm.get("IpProtocol")) != _API_PROTOCOL[request["protocol"]]:
            continue
        if (perm.get("FromPort"), perm.get("ToPort")) != (request["from_port"], request["to_port"]):
            continue
        if any(r.get(field) == request["cidr"] for r in perm.get(key) or []):
            return True
    return False


def call(client, method, group_id, region, **params):
    """``client.method(**params)``; an AWS error becomes InputError (not found) or BackendUnavailable."""
    try:
        return getattr(client, method)(**params)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code, text = err.get("Code", "?"), err.get("Message", str(exc))
        if code.endswith(".NotFound") or code.endswith(".Malformed"):
            what = "network ACL" if str(group_id).startswith("acl-") else "security group"
            raise InputError("%s %s not found in region %s (%s)" % (what, group_id, region, text))
        raise BackendUnavailable("AWS %s on %s failed: %s: %s" % (method, group_id, code, text))
    except BotoCoreError as exc:
        raise BackendUnavailable("AWS %s on %s failed: %s" % (method, group_id, exc))


def _read(client, group_id, region):
    groups = call(client, "describe_security_groups", group_id, region, GroupIds=[group_id]).get("SecurityGroups") or []
    if not groups:
        raise InputError("security group %s not found in region %s" % (group_id, region))
    return groups[0]


def diff_text(group_id, name, vpc_id, lines):
    """A group's rules as the diff shows them: a title line, then one line per rule."""
    return "security group %s (%s)%s\n%s" % (group_id, name, " in %s" % vpc_id if vpc_id else "",
                                             "".join(line + "\n" for line in lines))


def _text(group, lines):
    return diff_text(group.get("GroupId"), group.get("GroupName"), group.get("VpcId"), lines)


def ensure(client, request, region, check_mode=False):
    """Make the group hold (or not hold) the request's rule.  Returns the module result."""
    group = _read(client, request["group_id"], region)
    before = rule_lines(group.get("IpPermissions"))
    present = _has(group.get("IpPermissions"), request)
    perm = permission(request)
    wanted = request["state"] == "present"
    change = present != wanted
    method = "authorize_security_group_ingress" if wanted else "revoke_security_group_ingress"
    cli = "aws ec2 %s --region %s --group-id %s --ip-permissions %s" % (
        method.replace("_", "-"), shlex.quote(str(region)), request["group_id"],
        shlex.quote(json.dumps([perm], separators=(",", ":"))))
    rule = {k: request[k] for k in ("protocol", "from_port", "to_port", "cidr", "description")}
    flow = _flow_text(request["protocol"], _port_text((request["from_port"], request["to_port"]), request["protocol"]),
                      request["from_port"])
    if not change:
        after = before
        verb = "allows" if wanted else "has no rule for"
        msg = "%s already %s %s from %s" % (request["group_id"], verb, flow, request["cidr"])
    elif check_mode:
        line = rule_lines([perm])[0]
        after = sorted(before + [line]) if wanted else [x for x in before if x != line]
        msg = "would %s %s from %s in %s" % ("allow" if wanted else "stop allowing", flow, request["cidr"], request["group_id"])
    else:
        call(client, method, request["group_id"], region, GroupId=request["group_id"], IpPermissions=[perm])
        group = _read(client, request["group_id"], region)
        after = rule_lines(group.get("IpPermissions"))
        if _has(group.get("IpPermissions"), request) != wanted:
            raise BackendUnavailable("%s: AWS accepted %s but the group does not show the change" % (request["group_id"], method))
        msg = "%s %s from %s in %s" % ("allowed" if wanted else "stopped allowing", flow, request["cidr"], request["group_id"])
    api = {"method": method, "params": {"GroupId": request["group_id"], "IpPermissions": [perm]}} if change else None
    return {"changed": change, "msg": msg,
            "group": {"id": group.get("GroupId"), "name": group.get("GroupName"), "vpc_id": group.get("VpcId")},
            "rule": rule, "api": api, "command": cli if change else None,
            "rules": {"before": before, "after": after},
            "diff": {"before": _text(group, before), "after": _text(group, after)}}
