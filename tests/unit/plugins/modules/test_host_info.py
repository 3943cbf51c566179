# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_info run as Ansible runs it: one call returns what listeners_info returns (with this
host's addresses) and what firewall_info returns.  The firewall is read only inside a private
network namespace (never this machine's own rules)."""

import socket

import pytest

from .. import helpers


def run_module(args, check_mode=False, prefix=None):
    return helpers.run_module("host_info", args, check_mode, prefix=prefix)


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(3)
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("check_mode", [False, True])
def test_listeners_and_addresses_without_the_firewall(listener, check_mode):
    res = run_module({"ports": [listener], "protocols": ["tcp"], "firewall": False}, check_mode=check_mode)
    assert "failed" not in res, res.get("msg")
    assert res["changed"] is False
    lst = res["listeners_info"]
    assert [(entry["address"], entry["port"], entry["scope"]) for entry in lst["listeners"]] == [("127.0.0.1", listener, "loopback")]
    assert {"interface": "lo", "family": "ipv4", "address": "127.0.0.1", "prefix": 8, "scope": "host",
            "secondary": False} in lst["interface_addresses"]
    assert "routes" in lst and "sysctls" in lst
    assert res["firewall_info"] is None


@pytest.mark.skipif(not helpers.private_namespaces_work(), reason="needs network and mount namespaces (root)")
def test_the_firewall_layers_come_in_the_same_call():
    setup = "ip link set lo up; nft add table inet t; nft add chain inet t input '{ type filter hook input priority 0; policy drop; }'"
    res = run_module({"ports": [22]}, prefix=helpers.private_namespaces(setup=setup))
    assert "failed" not in res, res.get("msg")
    fw = res["firewall_info"]
    assert fw["layers"]["nftables"]["present"] is True
    chains = [c for t in fw["ruleset"]["tables"] for c in t["chains"] if t["name"] == "t"]
    assert [(c["name"], c["policy"]) for c in chains] == [("input", "drop")]
    assert [a["address"] for a in res["listeners_info"]["interface_addresses"]] == ["127.0.0.1", "::1"]


@pytest.mark.parametrize("args,needle", [({"protocols": ["sctp"]}, "sctp"), ({"firewall": "sometimes"}, "firewall"),
                                         ({"ports": ["70000"]}, "70000")])
def test_bad_input_fails_naming_the_value(args, needle):
    res = run_module(dict(args, firewall=args.get("firewall", False)))
    assert res.get("failed") is True and needle in res["msg"]


def test_facts_returns_the_two_results_as_host_facts_and_nothing_twice(listener):
    res = run_module({"ports": [listener], "protocols": ["tcp"], "firewall": False, "facts": True})
    assert "failed" not in res, res.get("msg")
    assert "listeners_info" not in res and "firewall_info" not in res
    facts = res["ansible_facts"]
    assert [e["port"] for e in facts["reachability_listeners"]["listeners"]] == [listener]
    assert facts["reachability_listeners"]["interface_addresses"]
    assert facts["reachability_firewall"] == {"skipped": True}
