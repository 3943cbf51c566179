# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The firewalld guard: would new zone settings stop accepting the management connection?"""

from __future__ import annotations

import copy

from ansible_collections.netdiag.reachability.plugins.module_utils.fix.guard import (
    WouldCutManagement, describe_management, normalize_management)
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld.zones import zone_answer


def _with_service_ports(settings, services, known=None):
    out = dict(settings)
    known = known or {}
    out["service_ports"] = {s: list((services.get(s) or {}).get("ports") or known.get(s) or [])
                            for s in settings.get("services") or []}
    return out


def firewalld_guard(fw_facts, zone, after, mgmt):
    """Raise WouldCutManagement when the zone settings ``after`` (``{runtime: settings, permanent: settings}``,
    as netdiag.reachability.firewalld_port returns them) stop accepting the management connection.

    ``fw_facts`` are firewall_info's ``firewalld`` facts (zones, ipsets, services, default zone).  The zone that
    handles the management connection is found like firewalld does (source binding - address or ipset -, else
    the default zone); a zone bound to an interface is treated as possibly handling it too, and so is a zone the
    source address alone cannot rule out (an ipset of type hash:ip,port or hash:mac): that zone is then checked
    as if it handled the connection.  Returns a list of strings saying what was checked.
    """
    mgmt = normalize_management(mgmt)
    if not fw_facts or not fw_facts.get("running", True):
        return ["firewalld is not running: no runtime filtering to cut"]
    packet = {"family": "ipv4" if ":" not in mgmt["source"] else "ipv6", "proto": "tcp", "src": mgmt["source"],
              "dst": mgmt.get("address"), "sport": 40000, "dport": mgmt["port"], "ct_state": "new"}
    services = fw_facts.get("services") or {}
    checked = []
    for side, settings in sorted((after or {}).items()):
        config = fw_facts.get(side)
        if not config or zone not in (config.get("zones") or {}):
            continue
        config = copy.deepcopy(config)
        for name, settings_now in config["zones"].items():
            if "service_ports" not in settings_now:
                config["zones"][name] = _with_service_ports(settings_now, services)
        before_facts = {"running": True, "services": services, side: config}
        new_config = copy.deepcopy(config)
        new_config["zones"][zone] = dict(_with_service_ports(settings, services, config["zones"][zone].get("service_ports")),
                                         target=config["zones"][zone].get("target", settings.get("target")))
        after_facts = {"running": True, "services": services, side: new_config}
        was = zone_answer(before_facts, packet)
        now = zone_answer(after_facts, packet)
        handles = was["zone"] == zone or bool(config["zones"][zone].get("interfaces"))
        if was["zone"] is None and zone in [c["zone"] for c in was.get("zone_candidates") or []]:
            # the zone may handle it (the source address alone cannot tell): check it as if it did
            was = zone_answer(before_facts, packet, zone=zone)
            now = zone_answer(after_facts, packet, zone=zone)
            handles = True
        checked.append("%s: %s before, %s after (%s)" % (side, was["verdict"], now["verdict"], now["reason"]))
        if handles and was["verdict"] == "accept" and now["verdict"] != "accept":
            raise WouldCutManagement(
                "refusing to change zone %s: the %s configuration would no longer accept %s (%s; before: %s; after: %s)"
                % (zone, side, describe_management(mgmt), was.get("zone_reason") or "zone %s handles it" % zone,
                   was["reason"], now["reason"]))
    return checked
