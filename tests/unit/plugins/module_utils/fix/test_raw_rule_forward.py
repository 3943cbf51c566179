# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""raw_rule on a router (forward_to): the forwarded packet walks the forward chain, the accept matches the
destination and goes right before the forward rule that drops it; the router's own ssh is still guarded;
and the remediate plan turns a report's path_block fix into such a rule only when asked to."""
import json

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils.fix import raw_rule
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import iptables, nftables
from ansible_collections.netdiag.reachability.plugins.plugin_utils import open_ports as op

from ...helpers import fixture

# the seeds router's forward chain (as `nft list ruleset` shows it) and an input chain that keeps ssh
ROUTER = """
table inet lab {
    chain forward {
        type filter hook forward priority 0; policy accept;
        ct state established,related accept
        ip daddr 10.200.2.10 tcp dport 8081 drop
        ip daddr 10.200.2.10 tcp dport 8082 reject
    }
    chain input {
        type filter hook input priority 0; policy drop;
        tcp dport 22 accept
    }
}
"""
HOSTS = ["client", "fwd-nft", "fwd-ipt", "ufw", "nft-drop", "ipt-reject", "ipt-legacy", "healthy", "dns", "loopback", "router"]


def _router():
    """ROUTER as `nft -j list ruleset` gives it."""
    return nftables.parse_nft_json(json.dumps({"nftables": [
        {"table": {"family": "inet", "name": "lab", "handle": 1}},
        {"chain": {"family": "inet", "table": "lab", "name": "forward", "handle": 1, "type": "filter", "hook": "forward",
                   "prio": 0, "policy": "accept"}},
        {"chain": {"family": "inet", "table": "lab", "name": "input", "handle": 2, "type": "filter", "hook": "input",
                   "prio": 0, "policy": "drop"}},
        {"rule": {"family": "inet", "table": "lab", "chain": "forward", "handle": 3, "expr": [
            {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": None}]}},
        {"rule": {"family": "inet", "table": "lab", "chain": "forward", "handle": 4, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.200.2.10"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8081}}, {"drop": None}]}},
        {"rule": {"family": "inet", "table": "lab", "chain": "forward", "handle": 5, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.200.2.10"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8082}},
            {"reject": None}]}},
        {"rule": {"family": "inet", "table": "lab", "chain": "input", "handle": 6, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"accept": None}]}},
    ]}))


def test_forward_accept_goes_before_the_forward_drop_and_matches_the_destination():
    req = raw_rule.normalize_request("nftables", ["8081/tcp"], forward_to="10.200.2.10")
    inserts, predicted, dummy = raw_rule.plan_present(_router(), req, iif="front0", oif="back0")
    assert [" ".join(i["command"]) for i in inserts] == [
        'nft insert rule inet lab forward position 4 ip daddr 10.200.2.10 tcp dport 8081 accept comment '
        '"netdiag.reachability open_ports"']
    assert raw_rule.plan_present(predicted, req, iif="front0", oif="back0")[0] == []
    # the other destination and port are still decided as before: nothing else is opened
    other = raw_rule.normalize_request("nftables", ["8082/tcp"], forward_to="10.200.2.10")
    assert [i["chain"] for i in raw_rule.plan_present(predicted, other)[0]] == ["forward"]
    # without forward_to the same port is an input question: the router's input chain drops it by policy
    local = raw_rule.normalize_request("nftables", ["8081/tcp"], address="10.200.1.1")
    assert [i["chain"] for i in raw_rule.plan_present(_router(), local)[0]] == ["input"]


def test_forward_iptables_rule_carries_the_destination():
    rs = iptables.parse_iptables_save("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -d 10.200.2.10/32 -p tcp -m tcp "
                                      "--dport 8081 -j DROP\nCOMMIT\n", family="ipv4", backend="iptables-legacy")
    req = raw_rule.normalize_request("iptables-legacy", ["8081/tcp"], source="10.200.1.10", forward_to="10.200.2.10")
    inserts, predicted, dummy = raw_rule.plan_present(rs, req)
    cmd = inserts[0]["command"]
    assert cmd[:6] == ["iptables-legacy", "-t", "filter", "-I", "FORWARD", "1"]
    assert cmd[6:10] == ["-s", "10.200.1.10", "-d", "10.200.2.10"]
    assert raw_rule.plan_present(predicted, req)[0] == []


def test_forward_guard_still_protects_the_routers_ssh():
    before = _router()
    req = raw_rule.normalize_request("nftables", ["8081/tcp"], forward_to="10.200.2.10")
    dummy, predicted, dummy2 = raw_rule.plan_present(before, req)
    assert raw_rule.guard(before, predicted, {"source": "10.200.255.1", "address": "10.200.1.1", "port": 22})


@pytest.mark.parametrize("kwargs,message", [
    ({"forward_to": "10.200.2.999"}, "invalid forward_to '10.200.2.999'"),
    ({"forward_to": "2001:db8::1", "source": "10.0.0.1"}, "not of the same address family"),
])
def test_bad_forward_to_is_refused(kwargs, message):
    with pytest.raises(InputError) as err:
        raw_rule.normalize_request("nftables", ["80/tcp"], **kwargs)
    assert message in str(err.value)


def _report():
    with open(fixture("open_ports", "seeds-report.json")) as fh:
        return json.load(fh)


def test_the_remediate_plan_fixes_the_router_only_when_asked():
    plan = op.plan_run(_report(), [], HOSTS)
    assert "router" not in plan["hosts"]
    assert all("routers are changed by hand unless open_ports_fix_routers is true" in m["why"]
               for m in plan["manual"] if m["cause"] == "path_block")
    plan = op.plan_run(_report(), [], HOSTS, routers=True)
    router = [r for r in plan["rules"] if r["host"] == "router"]
    assert [(r["backend"], r["ports"], r["forward_to"], r["table"], r["chain"], r["verify_from"]) for r in router] == [
        ("nftables", ["8081/tcp", "8082/tcp"], "10.200.2.10", "lab", "forward", "client")]
    assert not [m for m in plan["manual"] if m["cause"] == "path_block"]
    # forward_to is a raw-backend option and one address
    with pytest.raises(InputError) as err:
        op.normalize_rules([{"backend": "ufw", "ports": ["80/tcp"], "forward_to": "10.0.0.1"}])
    assert "forward_to '10.0.0.1' is only for nftables/iptables backends" in str(err.value)
