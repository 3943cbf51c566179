# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Add (or remove) the minimal ingress rule of an Alibaba Cloud ECS security group.

The request is the AWS one (``fix/security_group.normalize_request``: one flow, from one address as a /32 or
/128 or from a CIDR the caller gives, never from anywhere unless ``allow_anywhere``) plus the rule's priority.
ECS tries the rules of all the groups of an interface by priority (1 first, 100 last) and at equal priority a
Drop rule beats an Accept rule, so the Accept must come before the Drop that decides.  Without a priority it is
computed as the reader's fix computes it (``cloud/alicloud.fix``), from this group's rules: one before the first
Drop rule of the group that overlaps the flow, else 100; a Drop at priority 1 cannot be beaten.

ECS identifies a rule by protocol, port range, source and policy, not by priority: AuthorizeSecurityGroup of a
rule that exists at another priority succeeds and adds nothing.  Such a rule is moved to the priority asked for
with ModifySecurityGroupRule (by its rule id).  RevokeSecurityGroup is called with the same permission.

The client is ``cloud/alicloud.Client``, passed in (it maps the API's errors and retries throttled calls), so this
file needs no SDK of its own.
"""

from __future__ import annotations

import ipaddress
import re
import shlex

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import BackendUnavailable, InputError
from ansible_collections.netdiag.reachability.plugins.module_utils.fix import security_group

PERMISSIONS = ("ecs:DescribeSecurityGroupAttribute", "ecs:AuthorizeSecurityGroup", "ecs:RevokeSecurityGroup",
               "ecs:ModifySecurityGroupRule")
_API_PROTOCOL = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMP", "icmpv6": "ICMPv6"}
_NUMBERS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}  # IANA numbers, accepted in some regions
_ICMP = ("icmp", "icmpv6", "ipv6-icmp", "icmp6")
# a rule with one of these is narrower (quintuple rules) or has another kind of source than the rule asked for
_OTHER_MATCHES = ("SourceGroupId", "SourcePrefixListId", "DestCidrIp", "Ipv6DestCidrIp", "DestGroupId", "DestPrefixListId")
MAX_PAGES = 1000


def normalize_priority(priority):
    """``None`` (computed from the group) or 1..100."""
    if priority is None:
        return None
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 100:
        raise InputError("invalid priority %r (expected 1-100: 1 is tried first, and a Drop rule beats an Accept rule "
                         "of the same priority)" % (priority,))
    return priority


def normalize_request(group_id, protocol, port=None, source=None, cidr=None, icmp_type=None, state="present",
                      allow_anywhere=False, description=None, priority=None):
    """The request in one form (``fix/security_group.normalize_request`` plus ``priority``); every error names the bad value.

    ECS rules match every ICMP type (port range ``-1/-1``), so ``icmp_type`` may only be omitted or -1.
    """
    icmp = str(protocol or "").lower() in _ICMP
    if icmp and icmp_type not in (None, -1):
        raise InputError("icmp_type %r: an Alibaba Cloud security group rule matches every ICMP type (port range -1/-1); "
                         "omit icmp_type or give -1" % (icmp_type,))
    request = security_group.normalize_request(group_id, protocol, port, source, cidr, -1 if icmp else icmp_type, state,
                                               allow_anywhere, description)
    if description is None:
        request["description"] = "netdiag: allow %s from %s" % (flow_text(request), request["cidr"])
    request["priority"] = normalize_priority(priority)
    return request


def flow_text(request):
    """``80/tcp``, ``8000-8010/tcp``, ``icmp``."""
    if request["protocol"] in ("icmp", "icmpv6"):
        return request["protocol"]
    lo, hi = request["from_port"], request["to_port"]
    return "%s/%s" % (lo if lo == hi else "%d-%d" % (lo, hi), request["protocol"])


def _port_range(request):
    if request["protocol"] in ("icmp", "icmpv6"):
        return "-1/-1"
    return "%d/%d" % (request["from_port"], request["to_port"])


def permission(request, priority):
    """The ``Permissions.1`` entry of AuthorizeSecurityGroup, in the API's names (as ``cloud/alicloud.fix`` builds it)."""
    return {"Policy": "accept", "Priority": priority, "IpProtocol": _API_PROTOCOL[request["protocol"]],
            "PortRange": _port_range(request), ("Ipv6SourceCidrIp" if ":" in request["cidr"] else "SourceCidrIp"): request["cidr"],
            "Description": request["description"]}


# ---------------------------------------------------------------- reading the group's rules

def _call(client, action, group_id, params):
    try:
        return client.call_api(action, params)
    except InputError as exc:
        if str(getattr(exc, "code", "")).startswith("InvalidSecurityGroupId"):
            raise InputError("security group %s not found in region %s (%s)" % (group_id, client.region, exc))
        raise


def read_group(client, group_id):
    """The DescribeSecurityGroupAttribute body, every page of its rules in ``Permissions.Permission``."""
    body = _call(client, "DescribeSecurityGroupAttribute", group_id, {"SecurityGroupId": group_id})
    perms = list((body.get("Permissions") or {}).get("Permission") or [])
    token, pages = body.get("NextToken"), 1
    while token:
        if pages >= MAX_PAGES:
            raise BackendUnavailable("ecs:DescribeSecurityGroupAttribute of %s returned more than %d pages "
                                     "(a NextToken that never ends?)" % (group_id, MAX_PAGES))
        more = _call(client, "DescribeSecurityGroupAttribute", group_id, {"SecurityGroupId": group_id, "NextToken": token})
        perms += list((more.get("Permissions") or {}).get("Permission") or [])
        token, pages = more.get("NextToken"), pages + 1
    body["Permissions"] = {"Permission": perms}
    return body


def ingress(group):
    return [p for p in (group.get("Permissions") or {}).get("Permission") or []
            if str(p.get("Direction") or "ingress").lower() == "ingress"]


def _priority(perm):
    try:
        return int(perm.get("Priority") or 1)   # the API's default
    except (TypeError, ValueError):
        raise InputError("%s: invalid priority %r" % (perm.get("SecurityGroupRuleId") or "a rule", perm.get("Priority")))


def _policy(perm):
    return "drop" if str(perm.get("Policy") or "accept").lower() == "drop" else "accept"


def _protocol(perm):
    proto = str(perm.get("IpProtocol") or "all").lower()
    return _NUMBERS.get(proto, "all" if proto == "-1" else proto)


def _ports(perm):
    """(first, last), or None for every port."""
    m = re.match(r"^\s*(-?\d+)\s*/\s*(-?\d+)\s*$", str(perm.get("PortRange") or "-1/-1"))
    if not m or int(m.group(1)) < 0:
        return None
    return int(m.group(1)), int(m.group(2))


def _source(perm):
    text = perm.get("SourceCidrIp") or perm.get("Ipv6SourceCidrIp")
    if not text:
        return None
    try:
        return ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        return None


def _same(perm, request):
    """The rule ECS would take for the request's (it identifies a rule without its priority)."""
    if _policy(perm) != "accept" or _protocol(perm) != request["protocol"]:
        return False
    ports = _ports(perm)
    wanted = None if request["protocol"] in ("icmp", "icmpv6") else (request["from_port"], request["to_port"])
    if ports != wanted or str(_source(perm)) != request["cidr"]:
        return False
    if any(perm.get(key) for key in _OTHER_MATCHES):
        return False
    return str(perm.get("SourcePortRange") or "-1/-1").replace(" ", "") == "-1/-1"


def _overlaps(perm, request):
    """Whether the rule matches some of the request's flow (a rule naming a source group or prefix list: not known)."""
    proto = _protocol(perm)
    if proto not in ("all", request["protocol"]):
        return False
    ports = _ports(perm)
    if ports is not None and request["protocol"] not in ("icmp", "icmpv6"):
        if ports[1] < request["from_port"] or ports[0] > request["to_port"]:
            return False
    source = _source(perm)
    net = ipaddress.ip_network(request["cidr"])
    return source is not None and source.version == net.version and source.overlaps(net)


def suggested_priority(perms, request):
    """One before the first Drop rule of ``perms`` that overlaps the request's flow, else 100."""
    drops = sorted((_priority(p), p.get("SecurityGroupRuleId") or "?") for p in perms
                   if _policy(p) == "drop" and _overlaps(p, request))
    if not drops:
        return 100
    priority, rule_id = drops[0]
    if priority <= 1:
        raise InputError("the Drop rule %s of %s has priority 1 and matches %s from %s: no Accept rule can be tried "
                         "before it (a Drop rule wins at equal priority); change or remove that rule"
                         % (rule_id, request["group_id"], flow_text(request), request["cidr"]))
    return priority - 1


def rule_lines(perms):
    """One line per ingress rule, in the order ECS tries them (priority, then Drop before Accept)."""
    out = []
    for perm in perms:
        proto = _protocol(perm)
        ports = _ports(perm)
        if proto in ("tcp", "udp"):
            where = " all ports" if ports is None else " %d" % ports[0] if ports[0] == ports[1] else " %d-%d" % ports
        else:
            where = ""
        if _source(perm) is not None:
            source = str(_source(perm))
        elif perm.get("SourceGroupId"):
            source = "group %s" % perm["SourceGroupId"]
        elif perm.get("SourcePrefixListId"):
            source = "prefix list %s" % perm["SourcePrefixListId"]
        else:
            source = "any"
        out.append(((_priority(perm), _policy(perm) != "drop"), "ingress priority %d %s %s%s from %s" % (
            _priority(perm), _policy(perm), proto, where, source)))
    return [line for dummy, line in sorted(out)]


# ---------------------------------------------------------------- changing it

def _command(action, region, params):
    args = []
    for key, value in params.items():
        if key == "Permissions":
            args += ["--Permissions.1.%s %s" % (k, shlex.quote(str(v))) for k, v in value[0].items()]
        else:
            args.append("--%s %s" % (key, shlex.quote(str(value))))
    return "aliyun ecs %s --RegionId %s %s" % (action, shlex.quote(str(region)), " ".join(args))


def _listed(request, priority):
    """The rule as DescribeSecurityGroupAttribute lists it once added (for the check-mode prediction)."""
    perm = permission(request, priority)
    perm.update(Direction="ingress", Policy="Accept")
    return perm


def _holds(perms, request, priority):
    return any(_same(p, request) and (priority is None or _priority(p) == priority) for p in perms)


def _plan(perms, request):
    """(operation, params, priority, perms after) for the request; operation None when nothing changes."""
    gid = request["group_id"]
    same = [p for p in perms if _same(p, request)]
    if request["state"] == "absent":
        gone = [p for p in same if request["priority"] in (None, _priority(p))]
        if not gone:
            return None, None, request["priority"], perms
        priority = _priority(gone[0])
        perm = permission(request, priority)
        del perm["Description"]
        return "RevokeSecurityGroup", {"SecurityGroupId": gid, "Permissions": [perm]}, priority, \
            [p for p in perms if p is not gone[0]]
    priority = request["priority"] or suggested_priority(perms, request)
    found = [p for p in same if _priority(p) == priority]
    if not found and request["priority"] is None:
        found = [p for p in same if _priority(p) < priority]   # already tried before the Drop rule
    if found:
        return None, None, _priority(found[0]), perms
    if same:
        rule_id = same[0].get("SecurityGroupRuleId")
        if not rule_id:
            raise InputError("%s already has an Accept rule for %s from %s, at priority %d and without a rule id: ECS "
                             "identifies a rule without its priority, so remove that rule (state=absent) and run again"
                             % (gid, flow_text(request), request["cidr"], _priority(same[0])))
        after = [dict(p, Priority=priority) if p is same[0] else p for p in perms]
        return "ModifySecurityGroupRule", {"SecurityGroupId": gid, "SecurityGroupRuleId": rule_id, "Priority": priority}, \
            priority, after
    return "AuthorizeSecurityGroup", {"SecurityGroupId": gid, "Permissions": [permission(request, priority)]}, priority, \
        perms + [_listed(request, priority)]


def ensure(client, request, check_mode=False):
    """Make the group hold (or not hold) the request's rule.  Returns the module result."""
    gid = request["group_id"]
    group = read_group(client, gid)
    perms = ingress(group)
    before = rule_lines(perms)
    moved_from = next((_priority(p) for p in perms if _same(p, request)), None)
    operation, params, priority, predicted = _plan(perms, request)
    wanted = request["state"] == "present"
    flow = "%s from %s in %s" % (flow_text(request), request["cidr"], gid)
    at = " at priority %d" % priority if priority else ""
    if operation is None:
        after = before
        msg = "%s already allows %s from %s%s" % (gid, flow_text(request), request["cidr"], at) if wanted else \
            "%s has no rule for %s from %s%s" % (gid, flow_text(request), request["cidr"], at)
    else:
        if operation == "ModifySecurityGroupRule":
            verb = ("would move" if check_mode else "moved") + " the rule allowing"
            at = " from priority %d to %d" % (moved_from, priority)
        elif wanted:
            verb = "would allow" if check_mode else "allowed"
        else:
            verb = "would stop allowing" if check_mode else "stopped allowing"
        msg = "%s %s%s" % (verb, flow, at)
        if check_mode:
            after = rule_lines(predicted)
        else:
            _call(client, operation, gid, params)
            group = read_group(client, gid)
            perms = ingress(group)
            after = rule_lines(perms)
            if _holds(perms, request, priority) != wanted:
                raise BackendUnavailable("%s: Alibaba Cloud accepted %s but the group does not show the change"
                                         % (gid, operation))
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", operation or "").lower()
    rule = {k: request[k] for k in ("protocol", "from_port", "to_port", "cidr", "description")}
    rule["priority"] = priority
    name, vpc = group.get("SecurityGroupName"), group.get("VpcId")
    return {"changed": operation is not None, "msg": msg,
            "group": {"id": group.get("SecurityGroupId") or gid, "name": name, "vpc_id": vpc},
            "rule": rule,
            "api": {"operation": operation, "method": snake, "params": dict({"RegionId": client.region}, **params)}
            if operation else None,
            "command": _command(operation, client.region, params) if operation else None,
            "rules": {"before": before, "after": after},
            "diff": {"before": security_group.diff_text(gid, name, vpc, before),
                     "after": security_group.diff_text(gid, name, vpc, after)}}
