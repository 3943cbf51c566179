# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The management connection every changer must not cut.

:func:`management_from_ssh_connection` finds it (controller address, host address, ssh port)
from ``SSH_CONNECTION``; :func:`module_management` gives a module's ``management`` option or,
without one, that connection.  The guards that compare what a firewall does with a new
management connection before and after a change, and raise :class:`WouldCutManagement`, are
per backend: ``firewalld_guard.py``, ``ufw_guard.py``, and the rule-model check in ``raw_rule.py``.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.netdiag.reachability.plugins.module_utils._common.addresses import address_or_network
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, NetdiagError


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


def describe_management(mgmt):
    return "new ssh connections from %s to %s port %d/tcp" % (mgmt["source"], mgmt.get("address") or "this host", mgmt["port"])
