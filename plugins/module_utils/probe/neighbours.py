# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probing host's neighbour table (ARP, NDP), read with ``ip -j neigh show``.

A probe to an address on one of this host's own links gets no answer at all when nothing answers
the host's ARP or neighbour solicitation: the kernel drops the packet before it leaves, and a raw
socket hears nothing of it.  The table says so (``FAILED``); while the kernel is still asking it
says ``INCOMPLETE``.  Off-link addresses have no entry of their own (the gateway's entry does).
"""

from __future__ import annotations

import json

from ansible_collections.netdiag.reachability.plugins.module_utils._common.commands import command_output

UNRESOLVED = frozenset(("FAILED", "INCOMPLETE"))


def parse_ip_neigh(text):
    """``ip -j neigh show`` output -> ``{address: {"state": STATE or None, "dev": DEV or None}}``;
    text that is not that JSON gives ``{}`` (nothing is known, nothing is concluded)."""
    try:
        data = json.loads(text or "[]")
    except ValueError:
        return {}
    out = {}
    for entry in data if isinstance(data, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("dst"), str):
            continue
        state = entry.get("state")
        if isinstance(state, list):
            state = next((s for s in state if isinstance(s, str)), None)
        out[entry["dst"]] = {"state": state if isinstance(state, str) else None,
                             "dev": entry.get("dev") if isinstance(entry.get("dev"), str) else None}
    return out


def read_neighbours(run=command_output):
    """This host's neighbour table, or None when ``ip`` is missing or fails."""
    text = run(["ip", "-j", "neigh", "show"], timeout=5)
    return None if text is None else parse_ip_neigh(text)


def unresolved(table, address):
    """The entry of ``address`` when the kernel could not (or not yet) resolve it, else None."""
    entry = (table or {}).get(address)
    return entry if entry and entry["state"] in UNRESOLVED else None
