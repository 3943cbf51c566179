"""The explainer on saved facts captured from the seeds lab (fixtures/explain/seeds-facts.json;
see capture.py there): every seed scenario gets the right cause, culprit and fix, with no network."""
import copy
import json

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import CAUSES
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.run import explain

from ..helpers import fixture

FIX = fixture("explain", "seeds-facts.json")


@pytest.fixture(scope="module")
def facts():
    with open(FIX) as fh:
        return json.load(fh)


def flow(facts, address, port):
    for f in facts["flows"]:
        if f["address"] == address and f["port"] == port:
            return copy.deepcopy(f)
    raise KeyError((address, port))


def one(facts, address, port, hosts=None, **changes):
    f = flow(facts, address, port)
    f.update(changes)
    return explain([f], facts["hosts"] if hosts is None else hosts)["flows"][0]


@pytest.mark.parametrize("address,port,cause,culprit_has,fix_has", [
    ("10.200.2.10", 80, "ok", None, None),
    ("10.200.2.11", 8000, "ok", None, None),
    # seed 002: firewalld closes 80, allows 8000; nftables backend rejects with 3/13
    ("10.200.2.11", 80, "host_firewall", "admin-prohibited", "firewall-cmd --zone=public --add-port=80/tcp"),
    # firewalld iptables backend: 3/3 looks like "connection refused", but a listener is there
    ("10.200.2.12", 80, "host_firewall", "icmp-port-unreachable", "firewall-cmd --permanent --zone=public --add-port=80/tcp"),
    ("10.200.2.13", 8080, "loopback_only", "127.0.0.1:8080", None),
    ("10.200.2.14", 53, "no_listener", "nothing listens on port 53/udp", None),
    ("10.200.2.14", 5353, "ok", None, None),
    ("10.200.2.15", 80, "host_firewall", "icmp-host-prohibited", "iptables -t filter -I INPUT 1 -p tcp --dport 80 -j ACCEPT"),
    ("10.200.2.16", 3306, "host_firewall", "--dport 3306 -j DROP", "iptables-legacy -t filter -I INPUT 1"),
    ("10.200.2.17", 80, "host_firewall", "ufw default incoming policy: deny", "ufw allow from 10.200.1.10 to any port 80 proto tcp"),
    ("10.200.2.18", 80, "host_firewall", "tcp dport 80 drop", "nft insert rule inet filter input position"),
    # seed 003: the middle hop drops one port and rejects another
    ("10.200.2.10", 8081, "path_block", "tcp dport 8081 drop", "nft insert rule inet lab forward"),
    ("10.200.2.10", 8082, "path_block", "10.200.1.1 rejects with ICMP 3/13", "nft insert rule inet lab forward"),
    ("10.200.1.1", 8080, "ok", None, None),
    ("10.200.1.1", 8088, "nat", "dnat to 10.200.2.10:81", "healthy listens on"),
    ("10.200.2.10", 9999, "no_listener", "nothing listens on port 9999/tcp", None),
])
def test_every_seed_scenario(facts, address, port, cause, culprit_has, fix_has):
    f = one(facts, address, port)
    assert f["cause"] == cause, (f["cause"], f["culprit"])
    assert f["cause"] in CAUSES
    if culprit_has:
        assert culprit_has in json.dumps(f["culprit"])
    else:
        assert f["culprit"] is None
    if fix_has:
        assert fix_has in json.dumps(f["fix"])
    assert f["conflicts"] == []
    assert f["matches_expect"] is (cause == "ok")


def test_icmp_3_3_from_a_host_with_a_listener_is_the_firewall_not_no_listener(facts):
    f = one(facts, "10.200.2.12", 80)
    assert f["reason"] == "port-unreach"            # the wire alone says "connection refused"
    assert f["evidence"]["listener"]["accepted"] is True
    assert f["cause"] == "host_firewall"
    assert f["culprit"]["chain"] == "IN_public" and f["culprit"]["zone"] == "public"
    assert f["fix"]["open_ports"] == {"host": "fwd-ipt", "backend": "firewalld", "zone": "public", "ports": ["80/tcp"]}


def test_a_reject_sent_by_the_router_is_path_block_not_host_firewall(facts):
    f = one(facts, "10.200.2.10", 8082)
    assert f["evidence"]["observed"]["sender"] == "10.200.1.1"
    assert f["cause"] == "path_block"
    assert f["culprit"]["host"] == "router" and f["culprit"]["ttl"] == 1
    assert f["culprit"]["rule"]["handle"] is not None
    assert f["fix"]["commands"][0]["host"] == "router"


def test_wire_and_rules_disagree_is_said_not_hidden(facts):
    # the nft-drop host's rules drop 80/tcp; pretend the wire saw it open (e.g. the rules changed
    # between gathering and probing): the finding follows the wire and says so
    open_probe = flow(facts, "10.200.2.10", 80)["probe"]
    open_probe = dict(open_probe, address="10.200.2.18")
    f = one(facts, "10.200.2.18", 80, probe=open_probe, trace=None)
    assert f["cause"] == "ok"
    assert f["conflicts"] and "predict silence" in f["conflicts"][0] and "shows open" in f["conflicts"][0]


def test_without_firewall_facts_the_rule_cannot_be_named_and_it_says_so(facts):
    hosts = copy.deepcopy(facts["hosts"])
    del hosts["fwd-nft"]["firewall"]
    f = one(facts, "10.200.2.11", 80, hosts=hosts)
    assert f["cause"] == "host_firewall"                  # TCP + ICMP from the target is a firewall
    assert f["fix"]["manual"] is True
    assert any("no firewall facts" in c for c in f["conflicts"])


def test_silence_after_an_unmanaged_hop_is_unknown_with_the_hop_as_a_candidate(facts):
    # router facts unknown: the trace says packets die after hop 1, the destination's own rules accept.
    # A trace is inference: it cannot tell the hop from a destination that discards the packet.
    hosts = {k: v for k, v in facts["hosts"].items() if k != "router"}
    f = one(facts, "10.200.2.10", 8081, hosts=hosts)
    assert f["cause"] == "unknown" and f["decided_by"] is None
    hop, dest = f["candidates"]
    assert hop["address"] == "10.200.1.1" and "inventory" in hop["decide"]
    assert dest["host"] == "healthy" and "ip route get" in dest["decide"]


def test_silence_a_managed_router_accepts_never_blames_that_router(facts):
    # the router's forward rules are read and accept 80/tcp; the destination accepts too: nobody is named
    hosts = copy.deepcopy(facts["hosts"])
    f = one(facts, "10.200.2.10", 80, hosts=hosts, probe=_silent(),
            trace={"verdict": "silent_after_hop", "reason": "packets die after hop 1",
                   "blocking_hop": {"ttl": 1, "address": "10.200.1.1"},
                   "hops": [{"ttl": 1, "address": "10.200.1.1", "reply": "time-exceeded"}, {"ttl": 2, "address": None}]})
    assert f["cause"] == "unknown", f["culprit"]
    assert [c.get("host") for c in f["candidates"]] == ["router", "healthy"]
    assert "accept" in f["candidates"][0]["why"]


def test_unmanaged_destination_is_unknown_with_the_reason(facts):
    f = one(facts, "10.200.2.18", 80, hosts={})
    assert f["cause"] == "unknown" and "not a managed host" in f["culprit"]["text"]


def test_rate_limited_silence_is_flagged(facts):
    p = dict(flow(facts, "10.200.2.18", 80)["probe"], rate_limited=True)
    f = one(facts, "10.200.2.18", 80, probe=p)
    assert any("rate-limited" in c for c in f["conflicts"])


def test_expect_closed_flips_the_audit(facts):
    f = one(facts, "10.200.2.10", 80, expect="closed")
    assert f["cause"] == "ok" and f["matches_expect"] is False
    f = one(facts, "10.200.2.18", 80, expect="closed")
    assert f["matches_expect"] is True


def test_report_summary_counts(facts):
    rep = explain(copy.deepcopy(facts["flows"]), facts["hosts"])
    assert rep["schema"] == "netdiag.reachability/report" and rep["version"] == 1
    s = rep["summary"]
    assert s["flows"] == len(facts["flows"]) == s["ok"] + s["failed"]
    assert s["by_cause"]["host_firewall"] == 6 and s["by_cause"]["path_block"] == 2


@pytest.mark.parametrize("flows,needle", [
    ("nope", "must be a list"),
    ([{"address": "10.0.0.1", "port": 80}], "'protocol'"),
    ([{"address": "not-an-ip", "port": 80, "protocol": "tcp", "probe": {}}], "not-an-ip"),
])
def test_bad_input(flows, needle):
    with pytest.raises(InputError, match=needle):
        explain(flows, {})


@pytest.mark.parametrize("address,port,layer,backend", [
    ("10.200.2.11", 80, "firewalld", "nftables"),
    ("10.200.2.12", 80, "firewalld", "iptables-nft"),
    ("10.200.2.15", 80, None, "iptables-nft"),        # firewalld installed, not running
    ("10.200.2.16", 3306, None, "iptables-legacy"),   # firewalld installed, not running
    ("10.200.2.17", 80, "ufw", "iptables-nft"),
    ("10.200.2.18", 80, None, "nftables"),
])
def test_the_culprit_names_the_layer_that_really_decided(facts, address, port, layer, backend):
    f = one(facts, address, port)
    culprit = f["culprit"]
    assert culprit.get("layer") == layer, culprit
    assert culprit["backend"] == backend, culprit
    if layer == "firewalld":
        # firewall_info's zone answer: which zone, and why that zone handles the packet
        assert culprit["zone"] == "public" and culprit["zone_from"] in ("interface", "source", "default")
        assert "firewalld zone public" in culprit["text"]
    if layer is None:
        assert "zone" not in culprit and "firewalld" not in culprit["text"]


def test_flows_answered_by_the_destination_are_not_traced_and_need_no_trace(facts):
    # the plan skips the trace when the destination itself answered (reset, ICMP error): the
    # verdict must then be the same without it
    from ansible_collections.netdiag.reachability.plugins.plugin_utils.plan import trace_targets
    results = [f["probe"] for f in facts["flows"]]
    traced = {(t["address"], t["port"]) for t in trace_targets(None, {"results": results}, limit=100)}
    skipped = 0
    for f in facts["flows"]:
        key = (f["address"], f["port"])
        if f["probe"]["state"] == "open" or key in traced:
            continue
        skipped += 1
        with_trace, without = one(facts, *key), one(facts, *key, trace=None)
        assert (without["cause"], without["culprit"]) == (with_trace["cause"], with_trace["culprit"]), key
    # silent flows and rejects sent by the router are still traced
    assert ("10.200.2.10", 8081) in traced and ("10.200.2.10", 8082) in traced and ("10.200.2.18", 80) in traced
    assert skipped >= 6


# ------------------------------------------------------ the causes the seeds lab does not show by itself
# Each starts from the captured facts and changes only what the scenario changes.

def _healthy_with(facts, **listener_changes):
    hosts = copy.deepcopy(facts["hosts"])
    for lst in hosts["healthy"]["listeners"]:
        if lst["protocol"] == "tcp" and lst["port"] == 80:
            lst.update(listener_changes)
    return hosts


def _silent():
    return {"address": "10.200.2.10", "engine": "raw", "family": "ipv4", "port": 80, "protocol": "tcp",
            "rate_limited": False, "reason": "no-response", "reply": None, "retries": 1, "rtt_ms": None,
            "state": "filtered", "target": "10.200.2.10"}


def test_service_bound_to_another_address_is_wrong_address(facts):
    hosts = _healthy_with(facts, address="10.200.3.3", scope="specific")
    rst = dict(_silent(), reason="reset", state="closed",
               reply={"kind": "rst", "sender": "10.200.2.10", "sender_is_target": True, "ttl": 63})
    f = one(facts, "10.200.2.10", 80, hosts=hosts, probe=rst)
    assert f["cause"] == "wrong_address", (f["cause"], f["culprit"])
    assert f["culprit"]["miss"] == "other_address" and "10.200.3.3" in json.dumps(f["culprit"])
    assert "listen on 10.200.2.10:80" in f["fix"]["summary"]


def test_full_accept_queue_on_a_silent_port_is_listen_backlog_full(facts):
    hosts = _healthy_with(facts, accept_queue=129, accept_backlog=128)
    f = one(facts, "10.200.2.10", 80, hosts=hosts, probe=_silent(), trace=None)
    assert f["cause"] == "listen_backlog_full", (f["cause"], f["culprit"])
    assert "129 queued, backlog 128" in f["culprit"]["text"]
    assert "somaxconn" in f["fix"]["summary"]
    # the same queue on a port that still answers is only a note, not a failure
    f = one(facts, "10.200.2.10", 80, hosts=hosts)
    assert f["cause"] == "ok" and "accept queue is full" in f["evidence"]["note"]


def test_host_unreachable_from_the_router_is_host_down(facts):
    probe = dict(_silent(), reason="host-unreach", state="unreachable",
                 reply={"kind": "icmp", "icmp_type": 3, "icmp_code": 1, "icmp_name": "host-unreachable",
                        "sender": "10.200.1.1", "sender_is_target": False, "ttl": 64})
    f = one(facts, "10.200.2.10", 80, probe=probe, trace=None)
    assert f["cause"] == "host_down"
    assert f["culprit"]["address"] == "10.200.1.1" and "host-unreachable" in f["culprit"]["text"]
    assert f["conflicts"] == []


NFT_OUTPUT_DROP = {"nftables": [
    {"metainfo": {"version": "1.0.6", "release_name": "x", "json_schema_version": 1}},
    {"table": {"family": "inet", "name": "egress", "handle": 7}},
    {"chain": {"family": "inet", "table": "egress", "name": "output", "handle": 1, "type": "filter", "hook": "output",
               "prio": 0, "policy": "accept"}},
    {"rule": {"family": "inet", "table": "egress", "chain": "output", "handle": 4, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.200.2.0/24"}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}},
        {"drop": None}]}},
]}


def test_a_drop_in_the_sources_own_output_chain_is_source_firewall(facts):
    from ansible_collections.netdiag.reachability.plugins.module_utils.rules.nftables import parse_nft_json
    hosts = copy.deepcopy(facts["hosts"])
    hosts["client"]["firewall"] = parse_nft_json(json.dumps(NFT_OUTPUT_DROP))
    f = one(facts, "10.200.2.10", 80, hosts=hosts, probe=_silent(), trace=None)
    assert f["cause"] == "source_firewall", (f["cause"], f["culprit"])
    assert f["culprit"]["handle"] == 4 and f["culprit"]["chain"] == "output"
    # the fix accepts exactly this flow before the rule, in the source's own output chain
    assert f["fix"]["commands"] == [{"host": "client", "command":
                                     "nft insert rule inet egress output position 4 ip daddr 10.200.2.10 tcp dport 80 accept"}]
    assert f["decided_by"] == "ruleset"
    assert f["evidence"]["source_firewall"]["verdict"] == "drop"
    # the same rule does not touch another port
    assert one(facts, "10.200.2.10", 8081, hosts=hosts)["cause"] == "path_block"


def _refused(errno_name, code):
    return dict(_silent(), reason="admin-prohibited" if code == 13 else "no-route",
                state="filtered" if code == 13 else "unreachable",
                reply={"kind": "icmp", "icmp_type": 3, "icmp_code": code, "icmp_name": "x", "sender": "local",
                       "sender_is_target": False, "ttl": None, "local_errno": errno_name})


def test_a_send_the_source_refused_is_the_source_never_a_hop(facts):
    from ansible_collections.netdiag.reachability.plugins.module_utils.rules.nftables import parse_nft_json
    hosts = copy.deepcopy(facts["hosts"])
    hosts["client"]["firewall"] = parse_nft_json(json.dumps(NFT_OUTPUT_DROP))
    f = one(facts, "10.200.2.10", 80, hosts=hosts, probe=_refused("EPERM", 13), trace=None)
    assert (f["cause"], f["decided_by"]) == ("source_firewall", "wire")
    assert f["culprit"]["host"] == "client" and f["culprit"]["handle"] == 4
    # without the source's rules: still the source, and the missing facts are a conflict
    f = one(facts, "10.200.2.10", 80, probe=_refused("EPERM", 13), trace=None)
    assert f["cause"] == "source_firewall" and f["culprit"]["host"] == "client"
    assert "refused" in f["culprit"]["text"] and f["conflicts"]


def test_no_route_on_the_source_is_no_route_not_host_down(facts):
    f = one(facts, "10.200.2.10", 80, probe=_refused("ENETUNREACH", 0), trace=None)
    assert f["cause"] == "no_route" and f["culprit"]["host"] == "client"


def test_an_on_link_address_nobody_answers_arp_for_is_host_down_not_no_route(facts):
    """EHOSTUNREACH with the source's neighbour entry FAILED: the route is there, the host is not."""
    probe = _refused("EHOSTUNREACH", 1)
    probe["reply"].update(neighbour="FAILED", neighbour_dev="eth0")
    f = one(facts, "10.200.2.10", 80, probe=probe, trace=None)
    assert (f["cause"], f["decided_by"]) == ("host_down", "wire")
    assert f["culprit"]["kind"] == "neighbour" and f["culprit"]["host"] == "client"
    assert "ARP" in f["culprit"]["text"] and "FAILED" in f["culprit"]["text"] and "eth0" in f["culprit"]["text"]
    assert f["fix"]["manual"] and "10.200.2.10" in f["fix"]["summary"]
    # the same error without the entry (a connect engine on an old host, say) stays no route
    f = one(facts, "10.200.2.10", 80, probe=_refused("EHOSTUNREACH", 1), trace=None)
    assert f["cause"] == "no_route"


def test_a_destination_whose_route_back_to_the_source_discards_is_no_route(facts):
    # the seed lab's healthy host accepts 80/tcp; give it a blackhole route toward the client
    hosts = copy.deepcopy(facts["hosts"])
    hosts["healthy"]["routes"] = [
        {"family": "ipv4", "dst": "0.0.0.0/0", "type": "unicast", "gateway": "10.200.2.1", "dev": "eth0", "metric": 0},
        {"family": "ipv4", "dst": "10.200.1.10/32", "type": "blackhole", "gateway": None, "dev": None, "metric": 0}]
    f = one(facts, "10.200.2.10", 80, hosts=hosts, probe=_silent(), trace=None)
    assert (f["cause"], f["decided_by"]) == ("no_route", "ruleset")
    assert f["culprit"]["host"] == "healthy" and "blackhole" in f["culprit"]["text"]
    assert f["fix"]["commands"] == [{"host": "healthy", "command": "ip route del blackhole 10.200.1.10/32"}]


def test_the_routes_lead_to_a_managed_router_even_when_the_trace_is_silent(facts):
    # a trace with no answer at any TTL (the router's ICMP rate limit): the client's own route
    # names the gateway, the gateway is the managed router, and its forward rule names the culprit
    hosts = copy.deepcopy(facts["hosts"])
    hosts["client"]["routes"] = [
        {"family": "ipv4", "dst": "0.0.0.0/0", "type": "unicast", "gateway": "10.200.1.1", "dev": "eth0", "metric": 0}]
    silent_trace = {"verdict": "silent", "reason": "nothing answered any TTL", "blocking_hop": None,
                    "hops": [{"ttl": 1, "address": None}, {"ttl": 2, "address": None}]}
    p = dict(_silent(), port=8081)
    f = one(facts, "10.200.2.10", 8081, hosts=hosts, probe=p, trace=silent_trace)
    assert (f["cause"], f["culprit"]["host"]) == ("path_block", "router"), f["culprit"]
    assert f["culprit"]["address"] == "10.200.1.1"
    # without the client's routes nothing leads to the router: unknown, not a guess
    assert one(facts, "10.200.2.10", 8081, probe=p, trace=silent_trace)["cause"] == "unknown"


def _silent_after_router(address, port):
    return dict(_silent(), address=address, target=address, port=port), {
        "verdict": "silent_after_hop", "reason": "packets die after hop 1", "blocking_hop": {"ttl": 1, "address": "10.200.1.1"},
        "hops": [{"ttl": 1, "address": "10.200.1.1", "reply": "time-exceeded"}, {"ttl": 2, "address": None}]}


def test_a_reject_the_wire_never_saw_behind_an_unmanaged_hop_is_unknown(facts):
    # ipt-reject's rule rejects 80/tcp with an ICMP error, yet the probe heard nothing: the wire
    # outranks the ruleset, and the router on the way is not managed
    probe, trace = _silent_after_router("10.200.2.15", 80)
    hosts = {k: v for k, v in facts["hosts"].items() if k != "router"}
    f = one(facts, "10.200.2.15", 80, hosts=hosts, probe=probe, trace=trace)
    assert f["cause"] == "unknown", f["culprit"]
    assert [c.get("address") for c in f["candidates"]][0] == "10.200.1.1"
    assert f["candidates"][-1]["host"] == "ipt-reject" and any("silence" in c for c in f["conflicts"])
    # the router managed (its rules accept 80/tcp): nothing else can block it, the rule is the culprit
    f = one(facts, "10.200.2.15", 80, probe=probe, trace=trace)
    assert (f["cause"], f["culprit"]["host"]) == ("host_firewall", "ipt-reject")


def test_a_forward_fix_for_an_ipv6_destination_matches_ip6_daddr():
    from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.facts import HostIndex
    from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.fixes import _firewall_fix
    culprit = {"kind": "firewall", "host": "r", "verdict": "drop", "policy": False, "backend": "nftables",
               "family": "inet", "table": "lab", "chain": "forward", "handle": 7, "text": "tcp dport 80 drop"}
    flows = [{"address": "fd00:200::10", "port": 80, "protocol": "tcp", "source_address": "fd00:100::10"},
             {"address": "10.200.2.10", "port": 80, "protocol": "tcp", "source_address": "10.200.1.10"}]
    v6, v4 = [_firewall_fix(HostIndex({}), "r", culprit, f, "forward")["commands"][0]["command"] for f in flows]
    assert v6 == "nft insert rule inet lab forward position 7 ip6 daddr fd00:200::10 tcp dport 80 accept"
    assert v4 == "nft insert rule inet lab forward position 7 ip daddr 10.200.2.10 tcp dport 80 accept"


def test_silence_while_the_source_discarded_its_own_packets_is_unknown_naming_the_source(facts):
    """All-pairs on one kernel: the neighbour table overflowed and the source discarded its own SYNs. The
    rules accept, the wire is silent, and the probe counted the discards: unknown, the source first."""
    probe = dict(_silent(), local_discards=295)
    f = one(facts, "10.200.2.10", 80, probe=probe, trace=None)
    assert f["cause"] == "unknown"
    assert f["candidates"][0]["host"] == "client" and "neighbor table overflow" in f["candidates"][0]["decide"]
    assert "295" in f["culprit"]["text"] and any("IpOutDiscards" in c for c in f["conflicts"])
    # a drop rule read from the destination still decides (the ruleset), with the doubt shown
    f = one(facts, "10.200.2.18", 80, probe=dict(_silent(), local_discards=3), trace=None)
    assert f["cause"] == "host_firewall" and any("IpOutDiscards" in c for c in f["conflicts"])
