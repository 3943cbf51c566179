# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything the explainer needs from one host, read in one call (one round trip per host):
what ``listeners_info`` returns (listeners, sysctls, counters, routes) with the interface
addresses, and what ``firewall_info`` returns (every firewall layer).
"""

from __future__ import annotations

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils.gather import addresses as addresses_lib
from ansible_collections.netdiag.reachability.plugins.module_utils.gather import firewall as firewall_lib
from ansible_collections.netdiag.reachability.plugins.module_utils.gather import listeners as listeners_lib


def read_host(ports=None, protocols=listeners_lib.PROTOCOLS, include_process=True, firewall=True,
              read_addresses=addresses_lib.read_addresses, read_firewall=firewall_lib.result):
    """``{listeners_info, firewall_info, warnings}``: the two results the modules of those names
    return.  ``firewall_info`` is None when not asked for, and ``{failed: true, msg}`` when the
    layers could not be read (the listeners are returned all the same)."""
    lst = listeners_lib.gather(ports=ports, protocols=protocols, include_process=include_process)
    addresses_lib.add_to(lst, read_addresses)
    warnings = list(lst.get("warnings") or [])
    fw = None
    if firewall:
        try:
            fw = read_firewall(include_rules=True)
        except NetdiagError as exc:
            fw = {"failed": True, "msg": "firewall_info: %s" % exc}
            warnings.append(fw["msg"])
        else:
            warnings.extend(fw.get("firewall_warnings") or [])
    return {"listeners_info": lst, "firewall_info": fw, "warnings": warnings}
