# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Addresses as users type them."""

from __future__ import annotations

import ipaddress

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError


def address_or_network(value, what, where):
    try:
        return str(ipaddress.ip_network(str(value).strip(), strict=False)) if "/" in str(value) \
            else str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise InputError("%s: invalid %s %r (expected an IP address or network)" % (where, what, value))
