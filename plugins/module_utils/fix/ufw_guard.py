# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ufw guard: would new ufw rules stop accepting the management connection?"""

from __future__ import annotations

from ansible_collections.netdiag.reachability.plugins.module_utils.fix.guard import (
    WouldCutManagement, describe_management, normalize_management)
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import ufw as ufw_rules


def ufw_guard(before, after, mgmt):
    """Raise WouldCutManagement when ufw's facts ``after`` stop accepting the management connection."""
    mgmt = normalize_management(mgmt)
    packet = {"src": mgmt["source"], "dst": mgmt.get("address"), "proto": "tcp", "dport": mgmt["port"]}
    was, why_was = ufw_rules.config_verdict(before, packet)
    now, why_now = ufw_rules.config_verdict(after, packet)
    if was != "drop" and was != "reject" and now != "accept":
        raise WouldCutManagement("refusing to change ufw: it would no longer accept %s (before: %s %s; after: %s %s)"
                                 % (describe_management(mgmt), was, why_was, now, why_now))
    return ["ufw: %s before (%s), %s after (%s)" % (was, why_was, now, why_now)]
