# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The read side of the firewalld library: which zone handles traffic, and the missing bindings."""

import sys

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import MissingDependency
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import client as fc

BINDINGS = {"internal": {"interfaces": ["eth1"], "sources": ["10.200.0.0/16"]},
            "trusted": {"interfaces": [], "sources": ["10.200.1.0/24"]},
            "dmz": {"interfaces": ["eth0"], "sources": []}}


@pytest.mark.parametrize("kwargs, zone, how, words", [
    (dict(zone="work"), "work", "given", "given"),
    (dict(source="10.200.1.10"), "trusted", "source", "10.200.1.0/24"),
    (dict(source="10.200.9.9", interface="eth0"), "internal", "source", "10.200.0.0/16"),
    (dict(source="192.168.1.1", interface="eth0"), "dmz", "interface", "192.168.1.1 is bound to no zone"),
    (dict(interface="eth0"), "dmz", "interface", "eth0 is bound to zone dmz"),
    (dict(interface="eth7"), "public", "default", "eth7 is bound to no zone"),
    (dict(), "public", "default", "default zone public"),
])
def test_resolve_zone(kwargs, zone, how, words):
    got = fc.resolve_zone(BINDINGS, "public", **kwargs)
    assert got[:2] == (zone, how)
    assert words in got[2]


def test_missing_bindings_name_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "firewall", None)
    monkeypatch.setitem(sys.modules, "firewall.client", None)
    with pytest.raises(MissingDependency) as err:
        fc._import_client()
    assert "python3-firewall" in str(err.value)
    assert err.value.package == "python3-firewall"
