# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The management-connection guard every changer runs before it touches a firewall.

:func:`management_from_ssh_connection` finds the management connection (controller address,
host address, ssh port) from ``SSH_CONNECTION``; :func:`firewalld_guard` and :func:`ufw_guard`
compare what the firewall does with a new management connection before and after a change,
and raise :class:`WouldCutManagement` when the change would stop accepting it.  (The raw
nftables/iptables guard evaluates the rule model itself, see ``raw_rule.py``.)
"""

from __future__ import annotations

import copy
import ipaddress

from ansible_collections.netdiag.reachability.plugins.module_utils._common.addresses import address_or_network
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import ufw as ufw_rules
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld.zones import zone_answer


class WouldCutManagement(NetdiagError):
    """A change would stop the host from accepting new management (ssh) connections."""


# --------------------------------------------------------------------------- the management connection

def management_from_ssh_connection(text, port=None):
    """``SSH_CONNECTION`` ("client cport server sport") -> {source, address, port}; None when empty."""
    parts = str(text or "").split()
    if len(parts) != 4:
        return None
    try:
        ipaddress.ip_address(parts[0])
        ipaddress.ip_address(parts[2])
    except ValueError:
        return None
    return {"source": parts[0], "address": parts[2], "port": int(port or parts[3])}


def normalize_management(mgmt):
    if not isinstance(mgmt, dict) or not mgmt.get("source"):
        raise InputError("the management connection is unknown (%r): give its source address and ssh port" % (mgmt,))
    source = address_or_network(mgmt["source"], "management source", "management")
    address = address_or_network(mgmt["address"], "management address", "management") if mgmt.get("address") else None
    try:
        port = int(mgmt.get("port") or 22)
    except (TypeError, ValueError):
        raise InputError("management: invalid port %r" % (mgmt.get("port"),))
    if not 1 <= port <= 65535:
        raise InputError("management: invalid port %r" % (mgmt.get("port"),))
    return {"source": source, "address": address, "port": port}


# the ``management`` option of the modules that change a firewall (documented in the
# netdiag.reachability.management doc fragment)
MANAGEMENT_ARG_SPEC = dict(type="dict", options=dict(
    source=dict(type="str", required=True),
    address=dict(type="str"),
    port=dict(type="int", default=22),
))


def module_management(param, ssh_connection):
    """The connection a module must not cut: its ``management`` option, else the ssh connection
    it runs over (``SSH_CONNECTION``); None when neither is known (the guard is then skipped)."""
    mgmt = param or management_from_ssh_connection(ssh_connection)
    return normalize_management(mgmt) if mgmt else None


def _describe_mgmt(mgmt):
    return "new ssh connections from %s to %s port %d/tcp" % (mgmt["source"], mgmt.get("address") or "this host", mgmt["port"])


# --------------------------------------------------------------------------- firewalld guard

def _with_service_ports(settings, services, known=None):
    out = dict(settings)
    known = known or {}
    out["service_ports"] = {s: list((services.get(s) or {}).get("ports") or known.get(s) or [])
                            for s in settings.get("services") or []}
    return out


def firewalld_guard(fw_facts, zone, after, mgmt):
    """Raise WouldCutManagement when the zone settings ``after`` (``{runtime: settings, permanent: settings}``,
    as netdiag.reachability.firewalld_port returns them) stop accepting the management connection.

    ``fw_facts`` are firewall_info's ``firewalld`` facts (zones, services, default zone).  The zone that
    handles the management connection is found like firewalld does (source binding, else the
    default zone); a zone bound to an interface is treated as possibly handling it too.
    Returns a list of strings saying what was checked.
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
        checked.append("%s: %s before, %s after (%s)" % (side, was["verdict"], now["verdict"], now["reason"]))
        if handles and was["verdict"] == "accept" and now["verdict"] != "accept":
            raise WouldCutManagement(
                "refusing to change zone %s: the %s configuration would no longer accept %s (before: %s; after: %s)"
                % (zone, side, _describe_mgmt(mgmt), was["reason"], now["reason"]))
    return checked


# --------------------------------------------------------------------------- ufw guard

def ufw_guard(before, after, mgmt):
    """Raise WouldCutManagement when ufw's facts ``after`` stop accepting the management connection."""
    mgmt = normalize_management(mgmt)
    packet = {"src": mgmt["source"], "dst": mgmt.get("address"), "proto": "tcp", "dport": mgmt["port"]}
    was, why_was = ufw_rules.config_verdict(before, packet)
    now, why_now = ufw_rules.config_verdict(after, packet)
    if was != "drop" and was != "reject" and now != "accept":
        raise WouldCutManagement("refusing to change ufw: it would no longer accept %s (before: %s %s; after: %s %s)"
                                 % (_describe_mgmt(mgmt), was, why_was, now, why_now))
    return ["ufw: %s before (%s), %s after (%s)" % (was, why_was, now, why_now)]
