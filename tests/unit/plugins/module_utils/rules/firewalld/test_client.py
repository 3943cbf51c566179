# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The read side of the firewalld library: which zone handles traffic (address, ipset and interface
bindings, in firewalld's dispatch order), the ipsets as firewalld gives them, and the missing bindings."""

import json
import sys

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, MissingDependency
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import client as fc

from ....helpers import fixture

BINDINGS = {"internal": {"interfaces": ["eth1"], "sources": ["10.200.0.0/16"]},
            "trusted": {"interfaces": [], "sources": ["10.200.1.0/24"]},
            "dmz": {"interfaces": ["eth0"], "sources": []}}

# what firewalld 1.3.3 answered over D-Bus (fixtures/firewalld/ipsets/dbus-ipsets.json)
with open(fixture("firewalld", "ipsets", "dbus-ipsets.json")) as _fh:
    DBUS = json.load(_fh)
IPSETS = {name: fc.normalize_ipset(raw) for name, raw in DBUS["runtime"].items()}


@pytest.mark.parametrize("kwargs, zone, how, words", [
    (dict(zone="work"), "work", "given", "given"),
    # firewalld dispatches source zones in name order (firewalld 1.3.3 sorts its ZONES chain so, the lab shows
    # "ip saddr 10.200.0.0/16 goto filter_IN_internal" before "... 10.200.1.0/24 goto filter_IN_trusted"):
    # the broader binding of internal wins over trusted's more specific one, and the reason says both
    (dict(source="10.200.1.10"), "internal", "source",
     "source 10.200.1.10 is bound to zone internal (binding 10.200.0.0/16); it also matches zone trusted "
     "(source 10.200.1.10 is in binding 10.200.1.0/24), which firewalld dispatches after zone internal "
     "(zones of the same ingress priority are dispatched in name order)"),
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


def test_a_lower_ingress_priority_goes_first_even_before_source_bindings():
    """firewalld >= 2.0: the dispatch order is (ingress priority, sources before interfaces, zone name)."""
    bindings = {"internal": {"interfaces": [], "sources": ["10.200.0.0/16"]},
                "trusted": {"interfaces": [], "sources": ["10.200.1.0/24"], "ingress_priority": -10},
                "dmz": {"interfaces": ["eth0"], "sources": [], "ingress_priority": -20}}
    assert fc.resolve_zone(bindings, "public", source="10.200.1.10")[:2] == ("trusted", "source")
    zone, how, why = fc.resolve_zone(bindings, "public", source="10.200.1.10", interface="eth0")
    assert (zone, how) == ("dmz", "interface")
    got = fc.zone_resolution(bindings, "public", source="10.200.1.10")
    assert "zone trusted has ingress priority -10, zone internal 0: the lower goes first" in got["reason"]


# --------------------------------------------------------------------------- ipsets

def ipset_bindings(ipset, **more):
    out = {"internal": {"interfaces": [], "sources": ["ipset:%s" % ipset]},
           "dmz": {"interfaces": ["eth0"], "sources": []}}
    out.update(more)
    return out


def test_a_member_of_an_ipset_selects_its_zone_and_says_which_entry():
    got = fc.zone_resolution(ipset_bindings("admins"), "public", source="10.200.1.10", interface="eth0", ipsets=IPSETS)
    assert (got["zone"], got["how"]) == ("internal", "ipset")
    assert got["reason"] == "source 10.200.1.10 is in ipset admins (entry 10.200.1.0/24), bound to zone internal"
    assert got["binding"] == {"kind": "ipset", "value": "ipset:admins", "ipset": "admins", "entry": "10.200.1.0/24",
                              "type": "hash:net"}
    assert got["candidates"] == []
    # without that entry it falls to the zone of its interface
    assert got["next"]["zone"] == "dmz" and got["next"]["how"] == "interface"
    # a runtime-only entry counts too (the runtime configuration is what filters)
    assert fc.resolve_zone(ipset_bindings("admins"), "public", source="10.200.9.9", ipsets=IPSETS)[:2] == ("internal", "ipset")


def test_a_source_bound_ipset_comes_before_an_interface_binding_and_a_non_member_falls_through():
    got = fc.resolve_zone(ipset_bindings("admins"), "public", source="10.200.7.1", interface="eth0", ipsets=IPSETS)
    assert got == ("dmz", "interface", "source 10.200.7.1 is bound to no zone; interface eth0 is bound to zone dmz")
    assert fc.resolve_zone(ipset_bindings("admins"), "public", source="10.200.7.1", ipsets=IPSETS)[:2] == ("public", "default")


@pytest.mark.parametrize("ipset, source, zone", [
    ("hosts", "10.200.3.14", "internal"),      # hash:ip, within a network entry (10.200.3.0/28)
    ("hosts", "10.200.3.16", "public"),
    ("hosts", "10.200.4.7", "internal"),
    ("nets6", "fd00:200::5", "internal"),      # family inet6
    ("nets6", "10.200.1.10", "public"),        # an IPv4 address is never in an inet6 set
    ("admins", "fd00:200::5", "public"),       # nor an IPv6 one in an inet set
    ("admins", "10.200.1.0/25", "internal"),   # a network within the entry
])
def test_membership_by_address_and_family(ipset, source, zone):
    assert fc.resolve_zone(ipset_bindings(ipset), "public", source=source, ipsets=IPSETS)[0] == zone


def test_ranges_as_firewalld_takes_them(tmp_path):
    from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import xml as fx
    ranges = fc.normalize_ipset(fx.ipset_settings(fixture("firewalld", "ipsets", "etc", "firewalld", "ipsets", "ranges.xml")))
    sets = {"ranges": ranges}
    assert ranges["entries"] == ["10.200.3.1-10.200.3.9", "10.200.6.0/30"]
    for source, zone in (("10.200.3.1", "internal"), ("10.200.3.9", "internal"), ("10.200.3.10", "public"),
                         ("10.200.6.3", "internal"), ("10.200.6.4", "public")):
        assert fc.resolve_zone(ipset_bindings("ranges"), "public", source=source, ipsets=sets)[0] == zone, source


@pytest.mark.parametrize("ipset, source, needle", [
    ("ports6", "fd00::1", "type hash:ip,port also needs the source port"),
    ("macs", "10.200.1.10", "holds MAC addresses (type hash:mac): 10.200.1.10's MAC address is not known"),
    ("tmo", "10.200.5.5", "ipset tmo has a timeout (600 s): its entries are added at runtime and firewalld does not list them"),
    ("nosuch", "10.200.1.10", "ipset nosuch is not defined"),
    ("admins", "10.200.0.0/16", "only part of 10.200.0.0/16 is in ipset admins (entry 10.200.1.0/24)"),
])
def test_what_the_address_cannot_tell_is_undecided_never_guessed(ipset, source, needle):
    got = fc.zone_resolution(ipset_bindings(ipset), "public", source=source, interface="eth0", ipsets=IPSETS)
    assert got["zone"] is None and got["how"] == "undecided"
    assert needle in got["reason"]
    assert "cannot be told from the source address alone" in got["reason"]
    assert [c["zone"] for c in got["candidates"]] == ["internal", "dmz"]   # in firewalld's order; the last otherwise
    assert got["candidates"][-1]["why"] == "otherwise: source %s is bound to no zone; interface eth0 is bound to zone dmz" % source
    assert fc.resolve_zone(ipset_bindings(ipset), "public", source=source, interface="eth0", ipsets=IPSETS)[:2] == (None, "undecided")


def test_an_undecidable_binding_after_the_deciding_one_does_not_matter():
    # "internal" < "work": the address binding of internal is dispatched before work's hash:ip,port ipset
    bindings = {"internal": {"interfaces": [], "sources": ["fd00::/64"]}, "work": {"interfaces": [], "sources": ["ipset:ports6"]}}
    assert fc.resolve_zone(bindings, "public", source="fd00::1", ipsets=IPSETS)[:2] == ("internal", "source")
    # the other way round, it is undecided: work first if the source port matches, else internal
    bindings = {"work": {"interfaces": [], "sources": ["fd00::/64"]}, "internal": {"interfaces": [], "sources": ["ipset:ports6"]}}
    got = fc.zone_resolution(bindings, "public", source="fd00::1", ipsets=IPSETS)
    assert got["zone"] is None and [c["zone"] for c in got["candidates"]] == ["internal", "work"]


def test_an_address_outside_every_entry_of_a_multi_dimension_set_is_decided():
    got = fc.zone_resolution(ipset_bindings("ports6"), "public", source="fd00::2", ipsets=IPSETS)
    assert (got["zone"], got["how"]) == ("public", "default")


def test_interface_wildcards():
    bindings = {"internal": {"interfaces": ["veth+"], "sources": []}}
    assert fc.resolve_zone(bindings, "public", interface="veth7")[:2] == ("internal", "interface")
    assert fc.resolve_zone(bindings, "public", interface="eth7")[:2] == ("public", "default")


def test_a_bad_source_is_named():
    with pytest.raises(InputError, match="'10.0.0.300'"):
        fc.resolve_zone(BINDINGS, "public", source="10.0.0.300")


def test_normalize_ipset_takes_the_dbus_list_and_the_dict():
    assert IPSETS["nets6"] == {"type": "hash:net", "family": "inet6", "timeout": 0, "options": {"family": "inet6"},
                               "entries": ["fd00:200::/64"]}
    assert IPSETS["tmo"]["timeout"] == 600 and IPSETS["tmo"]["entries"] == []
    assert IPSETS["admins"]["entries"] == ["10.200.1.0/24", "10.200.9.9"]   # runtime: the runtime-only entry too
    assert fc.normalize_ipset(DBUS["permanent"]["admins"])["entries"] == ["10.200.1.0/24"]
    assert fc.normalize_ipset({"type": "hash:ip", "options": {}, "entries": ["10.0.0.1"]})["family"] == "inet"


def test_online_reader_reads_ipsets_runtime_and_permanent():
    """The D-Bus calls python3-firewall's client makes, answered with what the daemon answered."""
    class Settings(object):
        def __init__(self, settings):
            self.settings = settings

    class Config(object):
        def getIPSetNames(self):
            return sorted(DBUS["permanent"])

        def getIPSetByName(self, name):
            return type("IPSet", (), {"getSettings": lambda self: Settings(DBUS["permanent"][name])})()

    class Fw(object):
        def getIPSets(self):
            return sorted(DBUS["runtime"])

        def getIPSetSettings(self, name):
            return Settings(DBUS["runtime"][name])

        def config(self):
            return Config()

    reader = fc.OnlineReader(Fw(), None)
    assert reader.ipsets(False) == IPSETS
    permanent = reader.ipsets(True)
    assert permanent["admins"]["entries"] == ["10.200.1.0/24"] and permanent["ports6"]["type"] == "hash:ip,port"


def test_offline_reader_reads_the_ipset_files_etc_over_usr(tmp_path):
    pytest.importorskip("firewall.core.io.ipset")
    import shutil
    etc, usr = tmp_path / "etc", tmp_path / "usr"
    shutil.copytree(fixture("firewalld", "ipsets", "etc", "firewalld"), str(etc))
    (usr / "ipsets").mkdir(parents=True)
    (usr / "ipsets" / "admins.xml").write_text('<?xml version="1.0"?>\n<ipset type="hash:ip"><entry>1.2.3.4</entry></ipset>\n')
    (usr / "ipsets" / "vendor.xml").write_text('<?xml version="1.0"?>\n<ipset type="hash:ip"><entry>1.2.3.4</entry></ipset>\n')
    got = fc.OfflineReader(str(etc), str(usr)).ipsets()
    assert sorted(got) == ["admins", "hosts", "macs", "nets6", "ports6", "ranges", "tmo", "vendor"]
    assert got["admins"]["type"] == "hash:net" and got["admins"]["entries"] == ["10.200.1.0/24"]   # /etc wins
    assert got["ports6"]["family"] == "inet6"


def test_missing_bindings_name_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "firewall", None)
    monkeypatch.setitem(sys.modules, "firewall.client", None)
    with pytest.raises(MissingDependency) as err:
        fc._import_client()
    assert "python3-firewall" in str(err.value)
    assert err.value.package == "python3-firewall"
