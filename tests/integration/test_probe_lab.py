# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""netdiag.reachability.probe from the lab's ``client`` towards the seed scenarios
(tests/lab/topologies/seeds.yml, docs/lab.md): every state and reason, under the raw
engine (root), the connect engine, and the library run as an unprivileged user."""

import json
import os
import textwrap
import time


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROUTER_FRONT = "10.200.1.1"

TARGETS = [
    {"host": "10.200.2.10", "ports": [80, 8081, 8082]},     # healthy; router drops 8081, rejects 8082
    {"host": "10.200.2.13", "ports": [8080]},               # loopback-only listener
    {"host": "10.200.2.14", "ports": [53], "protocol": "udp"},  # dns: nothing on 53/udp
    {"host": "10.200.2.10", "ports": [5353], "protocol": "udp"},  # healthy udp echo
    {"host": "10.200.2.15", "ports": [80]},                 # ipt-reject: icmp-host-prohibited
    {"host": "10.200.2.11", "ports": [80, 8000]},           # firewalld nftables backend
    {"host": "10.200.2.12", "ports": [80, 8000]},           # firewalld iptables backend
    {"host": "10.200.2.16", "ports": [3306]},               # iptables-legacy DROP
    {"host": "10.200.2.17", "ports": [80]},                 # ufw default deny
    {"host": "10.200.2.18", "ports": [80]},                 # nftables drop
]

# (address, port, protocol) -> (state, reason, sender)
EXPECTED = {
    ("10.200.2.10", 80, "tcp"): ("open", "syn-ack", "10.200.2.10"),
    ("10.200.2.10", 8081, "tcp"): ("filtered", "no-response", None),
    ("10.200.2.10", 8082, "tcp"): ("filtered", "admin-prohibited", ROUTER_FRONT),
    ("10.200.2.13", 8080, "tcp"): ("closed", "reset", "10.200.2.13"),
    ("10.200.2.14", 53, "udp"): ("closed", "port-unreach", "10.200.2.14"),
    ("10.200.2.10", 5353, "udp"): ("open", "udp-response", "10.200.2.10"),
    ("10.200.2.15", 80, "tcp"): ("filtered", "host-prohibited", "10.200.2.15"),
    ("10.200.2.11", 80, "tcp"): ("filtered", "admin-prohibited", "10.200.2.11"),
    ("10.200.2.11", 8000, "tcp"): ("open", "syn-ack", "10.200.2.11"),
    ("10.200.2.12", 80, "tcp"): ("filtered", "port-unreach", "10.200.2.12"),
    ("10.200.2.12", 8000, "tcp"): ("open", "syn-ack", "10.200.2.12"),
    ("10.200.2.16", 3306, "tcp"): ("filtered", "no-response", None),
    ("10.200.2.17", 80, "tcp"): ("filtered", "no-response", None),
    ("10.200.2.18", 80, "tcp"): ("filtered", "no-response", None),
}


def observed(results):
    return dict(((r["address"], r["port"], r["protocol"]),
                 (r["state"], r["reason"], r["reply"] and r["reply"]["sender"])) for r in results)


def check_evidence(res, engine):
    by = dict(((r["address"], r["port"], r["protocol"]), r) for r in res["results"])
    assert observed(res["results"]) == EXPECTED
    assert not any(r["rate_limited"] for r in res["results"])
    assert all(r["engine"] == engine for r in res["results"])
    router = by[("10.200.2.10", 8082, "tcp")]["reply"]
    assert router["sender_is_target"] is False and router["icmp_code"] == 13
    target = by[("10.200.2.11", 80, "tcp")]["reply"]
    assert target["sender_is_target"] is True
    # the router is one hop closer than the servers behind it
    assert router["ttl"] == target["ttl"] + 1
    assert by[("10.200.2.12", 80, "tcp")]["reply"]["icmp_name"] == "destination-unreachable/port-unreachable"
    assert by[("10.200.2.15", 80, "tcp")]["reply"]["icmp_code"] == 10
    if engine == "raw":
        assert by[("10.200.2.13", 8080, "tcp")]["reply"]["ttl"] is not None
    else:
        assert by[("10.200.2.13", 8080, "tcp")]["reply"]["ttl"] is None


def test_seed_scenarios_raw_engine(lab):
    res = lab.module("client", "netdiag.reachability.probe", {"targets": TARGETS, "engine": "raw"})
    assert res.get("failed") is not True, res
    assert res["changed"] is False and res["engine"] == "raw"
    check_evidence(res, "raw")


def test_seed_scenarios_connect_engine(lab):
    time.sleep(1.5)   # let the servers' ICMP token buckets refill
    res = lab.module("client", "netdiag.reachability.probe", {"targets": TARGETS, "engine": "connect"}, check=True)
    assert res.get("failed") is not True, res
    assert res["changed"] is False and res["engine"] == "connect"
    check_evidence(res, "connect")


RUNNER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, %r)
    from ansible_collections.netdiag.reachability.plugins.module_utils.probe import run as probe
    print(json.dumps(probe.probe(json.loads(sys.argv[1]))))
""") % os.path.join(ROOT, ".collections")


def test_seed_scenarios_unprivileged_user(lab):
    """The same classification as an unprivileged user (engine auto -> connect), run with
    the target's /usr/bin/python3 inside the client host."""
    time.sleep(1.5)
    proc = lab.exec("client", ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                               "/usr/bin/python3", "-c", RUNNER, json.dumps(TARGETS)], timeout=120)
    res = json.loads(proc.stdout)
    assert res["engine"] == "connect" and "not root" in res["engine_reason"]
    check_evidence(res, "connect")


def test_app_check_on_open_ports(lab):
    res = lab.module("client", "netdiag.reachability.probe",
                     {"targets": [{"host": "10.200.2.10", "ports": [80]}], "app_check": "http"})
    app = res["results"][0]["app"]
    assert app["answered"] is True and app["data"].startswith("HTTP/1.")


def test_bad_input_is_named(lab):
    res = lab.module("client", "netdiag.reachability.probe", {"targets": [{"host": "10.200.2.10", "ports": [70000]}]})
    assert res.get("failed") is True and "70000" in res["msg"]


def test_an_absent_address_on_the_sources_own_link_is_named_by_its_neighbour_entry(lab):
    """Nothing answers ARP for 10.200.1.250 on the client's link: the probe, asked twice, says the
    kernel dropped the packets here (EHOSTUNREACH, the neighbour entry FAILED) instead of silence,
    under both engines; a host on the link that answers is not touched by it."""
    for engine in ("raw", "connect"):
        res = lab.module("client", "netdiag.reachability.probe",
                         {"targets": [{"host": "10.200.1.250", "ports": [80]}, {"host": ROUTER_FRONT, "ports": [8080]}],
                          "engine": engine})
        assert res.get("failed") is not True, res
        by = dict((r["address"], r) for r in res["results"])
        absent = by["10.200.1.250"]
        assert (absent["state"], absent["reason"]) == ("unreachable", "host-unreach"), (engine, absent)
        assert absent["reply"]["sender"] == "local" and absent["reply"]["local_errno"] == "EHOSTUNREACH", engine
        assert absent["reply"]["neighbour"] in ("FAILED", "INCOMPLETE") and absent["reply"]["neighbour_dev"], engine
        assert by[ROUTER_FRONT]["state"] == "open", (engine, by[ROUTER_FRONT])
        assert any("10.200.1.250" in n for n in res["notes"]), (engine, res["notes"])


def test_diagnose_calls_an_absent_on_link_address_host_down_by_its_neighbour_entry(lab, tmp_path):
    proc = lab.playbook("netdiag.reachability.diagnose", extra_vars={
        "reachability_report_dir": str(tmp_path),
        "reachability_flows": [{"from": "client", "to": "10.200.1.250", "ports": ["80/tcp"]}]})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    with open(os.path.join(str(tmp_path), "report.json")) as fh:
        flow = json.load(fh)["flows"][0]
    assert (flow["cause"], flow["decided_by"]) == ("host_down", "wire"), flow
    assert flow["culprit"]["kind"] == "neighbour" and flow["culprit"]["host"] == "client"
    assert "ARP" in flow["culprit"]["text"] and "10.200.1.250" in flow["culprit"]["text"]
