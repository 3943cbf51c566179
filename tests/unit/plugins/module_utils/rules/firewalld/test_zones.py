# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The zone-level answer with ipset-bound zones (the ipsets as firewalld 1.3.3 gave them over D-Bus), the
runtime/permanent differences of ipsets, and the firewalld guard when the source alone cannot tell the zone."""

import copy
import json

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.fix import firewalld_guard, guard
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import client as fc
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import zones as fz

from ....helpers import fixture

with open(fixture("firewalld", "ipsets", "dbus-ipsets.json")) as _fh:
    DBUS = json.load(_fh)
MGMT = {"source": "10.200.1.10", "address": "10.200.2.11", "port": 22}


def _zone(**kw):
    out = fc.normalize_settings({"services": ["ssh"]})
    out["service_ports"] = {"ssh": ["22/tcp"]}
    out.update(kw)
    return out


def facts(internal_sources=("ipset:admins",), internal_services=("ssh",), side="runtime"):
    config = {"default_zone": "public",
              "zones": {"public": _zone(ports=["8000/tcp"], interfaces=["eth0"]),
                        "internal": _zone(sources=list(internal_sources), services=list(internal_services),
                                          service_ports={s: ["22/tcp"] for s in internal_services})},
              "ipsets": {n: fc.normalize_ipset(raw) for n, raw in DBUS[side].items()}}
    return {"running": True, "services": {"ssh": {"ports": ["22/tcp"], "protocols": [], "destination": {}}},
            "runtime": config, "permanent": copy.deepcopy(config), "differences": []}


def pkt(src, dport=8000, iif="eth0"):
    return {"family": "ipv6" if ":" in src else "ipv4", "proto": "tcp", "src": src, "dst": "10.200.2.11",
            "dport": dport, "iif": iif}


def test_an_ipset_member_is_answered_in_the_ipset_zone():
    got = fz.zone_answer(facts(), pkt("10.200.1.10"))
    assert (got["zone"], got["zone_from"]) == ("internal", "ipset")
    assert got["zone_reason"] == "source 10.200.1.10 is in ipset admins (entry 10.200.1.0/24), bound to zone internal"
    assert got["zone_binding"]["entry"] == "10.200.1.0/24"
    assert got["verdict"] == "reject" and got["allowed"] is False, "internal does not open 8000/tcp, public does"
    assert got["zone_next"]["zone"] == "public" and got["zone_next"]["how"] == "interface"
    # a non-member is in the interface's zone, which opens the port
    other = fz.zone_answer(facts(), pkt("10.200.7.7"))
    assert (other["zone"], other["zone_from"], other["verdict"]) == ("public", "interface", "accept")


def test_facts_saved_before_ipsets_were_read_leave_the_zone_undecided():
    old = facts()
    del old["runtime"]["ipsets"]
    got = fz.zone_answer(old, pkt("10.200.1.10"))
    assert got["zone"] is None and got["zone_from"] == "undecided"
    assert "ipset admins is not defined (or was not read)" in got["zone_reason"]
    assert [c["zone"] for c in got["zone_candidates"]] == ["internal", "public"]
    # the two zones disagree on 8000/tcp: no verdict
    assert got["verdict"] is None and "disagree" in got["reason"]
    # ... but both allow ssh: the verdict holds whichever zone it is
    ssh = fz.zone_answer(old, pkt("10.200.1.10", dport=22), ruleset_result={"verdict": "accept", "reason": "x"})
    assert ssh["zone"] is None and ssh["verdict"] == "accept" and ssh["agrees_with_ruleset"] is True
    assert "every zone it may be in says accept" in ssh["reason"]


def test_a_hash_ip_port_ipset_is_undecided_and_says_why():
    got = fz.zone_answer(facts(internal_sources=["ipset:ports6"]), pkt("fd00::1"))
    assert got["zone"] is None and "also needs the source port" in got["zone_reason"]
    assert got["agrees_with_ruleset"] is None


def test_ipset_differences_between_runtime_and_permanent():
    rt = {"default_zone": "public", "zones": {}, "ipsets": {n: fc.normalize_ipset(v) for n, v in DBUS["runtime"].items()}}
    pm = {"default_zone": "public", "zones": {}, "ipsets": {n: fc.normalize_ipset(v) for n, v in DBUS["permanent"].items()}}
    pm["ipsets"]["gone"] = pm["ipsets"].pop("macs")
    assert fz.differences(rt, pm) == [
        {"zone": None, "ipset": "admins", "key": "entries", "runtime_only": ["10.200.9.9"], "permanent_only": []},
        {"zone": None, "ipset": "gone", "key": "ipset", "runtime_only": [], "permanent_only": ["gone"]},
        {"zone": None, "ipset": "macs", "key": "ipset", "runtime_only": ["macs"], "permanent_only": []}]


def test_the_guard_finds_the_management_connection_in_the_ipset_zone():
    fw = facts()
    internal = fw["runtime"]["zones"]["internal"]
    with pytest.raises(guard.WouldCutManagement) as err:
        firewalld_guard.firewalld_guard(fw, "internal", {"runtime": dict(internal, services=[])}, MGMT)
    assert "zone internal" in str(err.value) and "ipset admins" in str(err.value)
    # the default zone does not handle it (the ipset zone does): removing ssh there cuts nothing
    public = fw["runtime"]["zones"]["public"]
    assert firewalld_guard.firewalld_guard(fw, "public", {"runtime": dict(public, services=[], interfaces=[])}, MGMT)


def test_the_guard_checks_a_zone_the_source_alone_cannot_rule_out():
    fw = facts(internal_sources=["ipset:macs"])
    internal = fw["runtime"]["zones"]["internal"]
    with pytest.raises(guard.WouldCutManagement) as err:
        firewalld_guard.firewalld_guard(fw, "internal", {"runtime": dict(internal, services=[])}, MGMT)
    assert "zone internal" in str(err.value)
