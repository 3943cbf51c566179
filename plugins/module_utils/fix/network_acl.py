# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Add (or remove) the minimal allow entry of an AWS network ACL, numbered so that it comes before the deny.

Network ACLs are stateless and ordered: the entry with the lowest rule number that matches decides.  The allow
for one flow (protocol, port range or ICMP type, one address as /32 or /128 or a CIDR the caller gives) gets the
highest free rule number below ``before`` (the rule number of the deny that decides today; 32767, the implicit
``*`` deny, by default), so every entry that came before it still does.  A rule from anywhere is refused unless
``allow_anywhere``.  The EC2 client is passed in.
"""

from __future__ import annotations

import re

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import BackendUnavailable, InputError
from ansible_collections.netdiag.reachability.plugins.module_utils.fix import security_group as sg

_ACL_RE = re.compile(r"^acl-[0-9a-zA-Z]{1,32}$")
_PROTO_NUMBER = {"tcp": "6", "udp": "17", "icmp": "1", "icmpv6": "58"}
_PROTO_NAME = {v: k for k, v in _PROTO_NUMBER.items()}
IMPLICIT_DENY = 32767


def normalize_request(acl_id, protocol, port=None, source=None, cidr=None, icmp_type=None, state="present",
                      allow_anywhere=False, egress=False, before=IMPLICIT_DENY):
    if not isinstance(acl_id, str) or not _ACL_RE.match(acl_id):
        raise InputError("invalid network_acl_id %r (expected acl-...)" % (acl_id,))
    if isinstance(before, bool) or not isinstance(before, int) or not 2 <= before <= IMPLICIT_DENY:
        raise InputError("invalid before %r (the rule number of the deny to come before: 2-32767)" % (before,))
    flow = sg.normalize_flow(protocol, port, source, cidr, icmp_type, state, allow_anywhere, acl_id)
    return dict(flow, acl_id=acl_id, egress=bool(egress), before=before)


def _matches(entry, request):
    if bool(entry.get("Egress")) != request["egress"] or entry.get("RuleAction") != "allow":
        return False
    if str(entry.get("Protocol")) != _PROTO_NUMBER[request["protocol"]]:
        return False
    if (entry.get("Ipv6CidrBlock") or entry.get("CidrBlock")) != request["cidr"]:
        return False
    if request["protocol"] in ("tcp", "udp"):
        pr = entry.get("PortRange") or {}
        return (pr.get("From"), pr.get("To")) == (request["from_port"], request["to_port"])
    itc = entry.get("IcmpTypeCode") or {}
    return itc.get("Type") == request["from_port"]


def entry_lines(entries, egress):
    out = []
    for e in sorted((e for e in entries or [] if bool(e.get("Egress")) == egress), key=lambda e: e.get("RuleNumber", 0)):
        number_text = str(e.get("Protocol"))
        proto = _PROTO_NAME.get(number_text, "all" if number_text == "-1" else number_text)
        pr = e.get("PortRange")
        ports = (" %s" % pr["From"] if pr["From"] == pr["To"] else " %s-%s" % (pr["From"], pr["To"])) if pr else ""
        number = "*" if e.get("RuleNumber") == IMPLICIT_DENY else str(e.get("RuleNumber"))
        where = "to" if egress else "from"
        cidr = e.get("Ipv6CidrBlock") or e.get("CidrBlock")
        direction = "egress" if egress else "ingress"
        out.append("%s %s %s%s %s %s %s" % (direction, number, proto, ports, where, cidr, e.get("RuleAction")))
    return out


def _read(client, acl_id, region):
    acls = sg.call(client, "describe_network_acls", acl_id, region, NetworkAclIds=[acl_id]).get("NetworkAcls") or []
    if not acls:
        raise InputError("network ACL %s not found in region %s" % (acl_id, region))
    return acls[0]


def free_number(used, below):
    """The highest rule number below ``below`` that no entry uses, or None."""
    for number in range(below - 1, 0, -1):
        if number not in used:
            return number
    return None


def ensure(client, request, region, check_mode=False):
    acl = _read(client, request["acl_id"], region)
    entries = acl.get("Entries") or []
    side = [e for e in entries if bool(e.get("Egress")) == request["egress"]]
    wanted = request["state"] == "present"
    found = [e for e in side if _matches(e, request) and (not wanted or e.get("RuleNumber", IMPLICIT_DENY) < request["before"])]
    before_lines = entry_lines(entries, request["egress"])
    params = None
    if wanted and not found:
        number = free_number({e.get("RuleNumber") for e in side}, request["before"])
        if number is None:
            raise InputError("network ACL %s has no free rule number below %d: edit that rule instead"
                             % (request["acl_id"], request["before"]))
        params = {"NetworkAclId": request["acl_id"], "RuleNumber": number, "Protocol": _PROTO_NUMBER[request["protocol"]],
                  "RuleAction": "allow", "Egress": request["egress"]}
        params["Ipv6CidrBlock" if ":" in request["cidr"] else "CidrBlock"] = request["cidr"]
        if request["protocol"] in ("tcp", "udp"):
            params["PortRange"] = {"From": request["from_port"], "To": request["to_port"]}
        else:
            params["IcmpTypeCode"] = {"Type": request["from_port"], "Code": -1}
        method, predicted = "create_network_acl_entry", entries + [dict(params)]
    elif not wanted and found:
        params = {"NetworkAclId": request["acl_id"], "RuleNumber": found[0]["RuleNumber"], "Egress": request["egress"]}
        method = "delete_network_acl_entry"
        predicted = [e for e in entries if e is not found[0]]
    else:
        method, predicted = None, entries
    changed = params is not None
    what = "%s %s" % (request["protocol"], request["from_port"] if request["from_port"] == request["to_port"]
                      or request["protocol"] not in ("tcp", "udp") else "%s-%s" % (request["from_port"], request["to_port"]))
    if changed and not check_mode:
        sg.call(client, method, request["acl_id"], region, **params)
        entries = _read(client, request["acl_id"], region).get("Entries") or []
        still = [e for e in entries if bool(e.get("Egress")) == request["egress"] and _matches(e, request)]
        if bool(still) != wanted:
            raise BackendUnavailable("%s: AWS accepted %s but the ACL does not show the change" % (request["acl_id"], method))
        predicted = entries
    where = "to" if request["egress"] else "from"
    if not changed:
        verb = "allows" if wanted else "has no allow for"
        msg = "%s already %s %s %s %s" % (request["acl_id"], verb, what, where, request["cidr"])
    else:
        if check_mode:
            verb = "would add" if wanted else "would delete"
        else:
            verb = "added" if wanted else "deleted"
        msg = "%s rule %d of %s: allow %s %s %s" % (verb, params["RuleNumber"], request["acl_id"], what, where, request["cidr"])
    after_lines = entry_lines(predicted, request["egress"])
    head = "network ACL %s (%s)\n" % (request["acl_id"], "egress" if request["egress"] else "ingress")
    if params:
        number = params["RuleNumber"]
    else:
        number = found[0]["RuleNumber"] if found else None
    return {"changed": changed, "msg": msg, "rule_number": number,
            "api": {"method": method, "params": params} if changed else None,
            "entries": {"before": before_lines, "after": after_lines},
            "diff": {"before": head + "".join(x + "\n" for x in before_lines),
                     "after": head + "".join(x + "\n" for x in after_lines)}}
