"""The standard-library reader of firewalld's XML (the fallback without python3-firewall) against
firewalld's own reader (firewall.core.io) on the same files: they must agree on every zone and
service, and the facts built from it must give the same zone-level answers."""
import os

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import MissingDependency, ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import client as fwc
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import xml as fx
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import zones as fz

from ....helpers import fixture

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = fixture("firewalld")
USR = os.path.join(FIX, "usr", "lib", "firewalld")
ETC = os.path.join(FIX, "fwd-nft", "etc", "firewalld")
SYSTEM_USR = "/usr/lib/firewalld"

zone_io = pytest.importorskip("firewall.core.io.zone")
service_io = pytest.importorskip("firewall.core.io.service")


def _zone_files():
    out = []
    for root in (os.path.join(FIX, "rich"), ETC, USR, SYSTEM_USR):
        folder = os.path.join(root, "zones")
        if os.path.isdir(folder):
            out += [(folder, f) for f in sorted(os.listdir(folder)) if f.endswith(".xml")]
    return out


@pytest.mark.parametrize("folder,fname", _zone_files())
def test_every_zone_reads_as_firewalld_reads_it(folder, fname):
    theirs = zone_io.zone_reader(fname, folder).export_config_dict()
    ours = fx.zone_settings(os.path.join(folder, fname))
    assert fwc.normalize_settings(ours) == fwc.normalize_settings(theirs)
    assert ours["rules_str"] == list(theirs.get("rules_str") or [])   # rich rules, word for word
    assert fz._target(ours["target"]) == fz._target(theirs.get("target", "default"))  # pylint: disable=protected-access


@pytest.mark.parametrize("folder", [os.path.join(USR, "services"), os.path.join(SYSTEM_USR, "services")])
def test_every_service_reads_as_firewalld_reads_it(folder):
    if not os.path.isdir(folder):
        pytest.skip("%s is not on this machine" % folder)
    for fname in sorted(os.listdir(folder)):
        theirs = service_io.service_reader(fname, folder).export_config_dict()
        ours = fx.service_settings(os.path.join(folder, fname))
        for key in ("ports", "protocols", "source_ports", "includes"):
            assert sorted(ours[key]) == sorted(tuple(x) if isinstance(x, list) else x
                                               for x in theirs.get(key) or []), (fname, key)
        assert ours["destination"] == dict(theirs.get("destination") or {}), fname


def _no_bindings(config_root, system_root):
    raise MissingDependency("the firewalld Python bindings (firewall.client, dbus)", package="python3-firewall")


def test_without_bindings_the_facts_come_from_the_xml_and_say_so():
    got = fz.read_firewalld(ETC, USR, connect=_no_bindings)
    ref = fz.read_firewalld(ETC, USR, connect=lambda c, s: (fwc.OfflineReader(c, s), "firewalld is not running"))
    assert got["read_with"].startswith("xml") and got["running"] is None and got["runtime"] is None
    assert "python3-firewall" in got["reason"] and "runtime configuration is not known" in got["reason"]
    assert got["warnings"][0] == got["reason"]
    assert got["permanent"] == ref["permanent"]
    assert got["services"] == ref["services"]
    assert got["default_zone"] == ref["default_zone"] == "public"
    pkt = {"family": "ipv4", "proto": "tcp", "src": "10.200.1.10", "dst": "10.200.2.11", "dport": 80, "iif": "eth0"}
    assert fz.zone_answer(got, pkt) == fz.zone_answer(ref, pkt)


def test_a_broken_zone_file_is_a_clear_error(tmp_path):
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "bad.xml").write_text("<zone><service name='ssh'>")
    with pytest.raises(ParseError, match="bad.xml"):
        fx.zone_settings(str(tmp_path / "zones" / "bad.xml"))


def test_firewall_info_reports_the_fallback_plainly():
    from ansible_collections.netdiag.reachability.plugins.module_utils.gather import firewall as fi
    facts = fi.gather(readers={
        "nftables": lambda: ({"model": 1, "tables": [], "warnings": []}, "test"),
        "iptables": lambda: {"model": 1, "tables": [], "warnings": []},
        "firewalld": lambda: fz.read_firewalld(ETC, USR, connect=_no_bindings),
        "ufw": lambda: None,
        "addresses": lambda: ["10.200.2.11"],
    })
    layer = facts["layers"]["firewalld"]
    assert layer["present"] is True and layer["active"] is None and layer["read_with"].startswith("xml")
    assert any("python3-firewall" in w for w in facts["firewall_warnings"])
    # the zone-level answer still works on the permanent configuration
    verdict = fi.evaluate_packets(facts, [{"family": "ipv4", "proto": "tcp", "src": "10.200.1.10",
                                           "dst": "10.200.2.11", "dport": 8000, "path": "input"}])[0]
    assert verdict["firewalld"]["zone"] == "public" and verdict["firewalld"]["allowed"] is True


IPSETS_ETC = os.path.join(FIX, "ipsets", "etc", "firewalld")


@pytest.mark.parametrize("fname", sorted(os.listdir(os.path.join(IPSETS_ETC, "ipsets"))))
def test_every_ipset_reads_as_firewalld_reads_it(fname):
    ipset_io = pytest.importorskip("firewall.core.io.ipset")
    folder = os.path.join(IPSETS_ETC, "ipsets")
    theirs = ipset_io.ipset_reader(fname, folder)
    ours = fwc.normalize_ipset(fx.ipset_settings(os.path.join(folder, fname)))
    assert ours == fwc.normalize_ipset({"type": theirs.type, "options": theirs.options, "entries": theirs.entries})
    assert ours["type"] and ours["family"] in ("inet", "inet6")


def test_a_file_that_is_not_an_ipset_is_a_clear_error(tmp_path):
    (tmp_path / "x.xml").write_text("<zone/>")
    with pytest.raises(ParseError, match="not a firewalld ipset"):
        fx.ipset_settings(str(tmp_path / "x.xml"))


def test_the_ipsets_are_in_the_facts_with_and_without_bindings(tmp_path):
    import shutil
    etc = str(tmp_path / "etc")
    shutil.copytree(ETC, etc)
    shutil.copytree(os.path.join(IPSETS_ETC, "ipsets"), os.path.join(etc, "ipsets"))
    got = fz.read_firewalld(etc, USR, connect=_no_bindings)
    ref = fz.read_firewalld(etc, USR, connect=lambda c, s: (fwc.OfflineReader(c, s), "firewalld is not running"))
    assert got["permanent"]["ipsets"] == ref["permanent"]["ipsets"]
    assert sorted(got["permanent"]["ipsets"]) == ["admins", "hosts", "macs", "nets6", "ports6", "ranges", "tmo"]
    assert got["permanent"]["ipsets"]["nets6"] == {"type": "hash:net", "family": "inet6", "timeout": 0,
                                                   "options": {"family": "inet6"}, "entries": ["fd00:200::/64"]}
