# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""netdiag.reachability.pcap_info on captures recorded in the lab during the test: tcpdump
(pcap) and dumpcap (pcapng) run inside ``client`` while real probes (curl, Python sockets,
ping: tests/unit/fixtures/pcap/lab_probes.py) hit the seed scenarios; the module then runs on
``client`` over ssh and must explain each flow as the probes experienced it."""

import json
import os
import random
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBES = os.path.join(ROOT, "tests", "unit", "fixtures", "pcap", "lab_probes.py")
FQCN = "netdiag.reachability.pcap_info"
ROUTER = "10.200.1.1"

# probe name -> (state, reason, ICMP sender or None) when the probe saw what the topology says
EXPECTED = {
    "healthy-80": ("open", "syn-ack", None),
    "loopback-8080": ("closed", "reset", None),
    "dns-53-udp": ("closed", "port-unreach", "10.200.2.14"),
    "healthy-5353-udp": ("open", "udp-response", None),
    "ipt-reject-80": ("filtered", "host-prohibited", "10.200.2.15"),
    "fwd-nft-80": ("filtered", "admin-prohibited", "10.200.2.11"),
    "fwd-ipt-80": ("filtered", "port-unreach", "10.200.2.12"),
    "nft-drop-80": ("filtered", "no-response", None),
    "healthy-8082": ("filtered", "admin-prohibited", ROUTER),
    "healthy-8081": ("filtered", "no-response", None),
}


def _wait(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s" % what)


@pytest.fixture(scope="module")
def capture(lab):
    """Record while the probes run; yield (directory, probe lines)."""
    base = 47100 + random.randrange(0, 40) * 20     # 20 ports per run; others probe the lab too
    work = "/tmp/ndpcap-it-%d-%d" % (os.getpid(), base)
    filt = "(tcp or udp) and portrange %d-%d or icmp" % (base, base + 19)
    lab.exec("client", ["mkdir", "-p", work])
    lab.exec("client", "chmod 777 %s; "
             "setsid tcpdump -i eth0 -U -s 256 -w %s/eth0.pcap '%s' >%s/tcpdump.log 2>&1 & echo $! >%s/pids; "
             "setsid dumpcap -q -i eth0 -s 256 -f '%s' -w %s/eth0.pcapng >%s/dumpcap.log 2>&1 & echo $! >>%s/pids"
             % (work, work, filt, work, work, filt, work, work, work))
    try:
        _wait(lambda: "listening on" in lab.exec("client", ["cat", work + "/tcpdump.log"]).stdout
              and os.path.exists(work + "/eth0.pcapng"), 20, "the recorders to start")
        time.sleep(0.5)
        proc = lab.exec("client", ["/usr/bin/python3", PROBES, str(base)], timeout=120)
        lines = [json.loads(line) for line in proc.stdout.splitlines()]
        time.sleep(0.5)
    finally:
        pids = lab.exec("client", ["cat", work + "/pids"], check=False).stdout.split()
        for pid in pids:
            lab.exec("client", ["kill", "-INT", pid], check=False)
        _wait(lambda: all(lab.exec("client", ["kill", "-0", p], check=False).returncode != 0 for p in pids),
              20, "the recorders to stop")
    yield work, lines
    lab.exec("client", ["rm", "-rf", work], check=False)


def _check(res, lines):
    assert res.get("failed") is not True, res.get("msg")
    assert res["changed"] is False and res["truncated"] is False
    flows = dict((f["sport"], f) for f in res["flows"] if f["protocol"] in ("tcp", "udp"))
    for line in lines:
        if "tries" not in line:
            continue
        sport, seen = line["tries"][-1]
        flow = flows[sport]
        assert (flow["dst"], flow["dport"]) == (line["address"], line["port"])
        if line["ok"]:
            state, reason, sender = EXPECTED[line["probe"]]
            assert (flow["state"], flow["reason"]) == (state, reason), (line, flow)
            assert (flow["icmp"] and flow["icmp"]["sender"]) == sender
        else:
            # rate-limited ICMP (the probe timed out where a reject was expected): the capture
            # must say the same thing the probe experienced
            assert seen == "timeout" and flow["reason"] == "no-response", (line, flow)
    return flows


def test_pcap_explains_what_the_probes_saw(lab, capture):
    work, lines = capture
    res = lab.module("client", FQCN, {"path": work + "/eth0.pcap"})
    flows = _check(res, lines)
    assert res["format"] == "pcap" and res["link_types"] == ["EN10MB"]
    by_name = dict((line["probe"], line) for line in lines if "tries" in line)
    seed = by_name["ipt-reject-80"]
    if seed["ok"]:      # seed 002: Type 3 Code 10, host administratively prohibited, from the server itself
        icmp = flows[seed["tries"][-1][0]]["icmp"]
        assert (icmp["type"], icmp["code"], icmp["sender_is_target"]) == (3, 10, True)
    router = by_name["healthy-8082"]
    if router["ok"]:
        icmp = flows[router["tries"][-1][0]]["icmp"]
        assert icmp["sender_is_target"] is False and icmp["code"] == 13
    drops = dict((s["sport"], s) for s in res["unanswered_syns"])
    for name in ("nft-drop-80", "healthy-8081"):
        assert drops[by_name[name]["tries"][-1][0]]["syns"] >= 2      # the kernel retransmitted
    resets = [r for r in res["resets"] if r["sender"] == "10.200.2.13"]
    assert resets and resets[0]["answers_syn"] is True


def test_pcapng_in_check_mode_with_filters(lab, capture):
    work, lines = capture
    lab.exec("client", ["chmod", "644", work + "/eth0.pcapng"])
    res = lab.module("client", FQCN, {"path": work + "/eth0.pcapng"}, check=True)
    _check(res, lines)
    assert res["format"] == "pcapng"
    res = lab.module("client", FQCN, {"path": work + "/eth0.pcapng", "host": "10.200.2.15", "port": 80}, check=True)
    # other engineers probe the lab from client too: their ICMP errors are in the capture as well
    assert res["flows"] and all(f["dst"] == "10.200.2.15" and f["dport"] == 80 for f in res["flows"])
    ours = [line["tries"][-1][0] for line in lines if line["probe"] == "ipt-reject-80"]
    assert ours[0] in [f["sport"] for f in res["flows"]]
    assert all(e["flow"]["dst"] == "10.200.2.15" for e in res["icmp_errors"])


def test_truncated_and_unreadable_captures_fail_clearly(lab, capture):
    work, lines = capture
    cut = work + "/cut.pcap"
    size = int(lab.exec("client", ["stat", "-c", "%s", work + "/eth0.pcap"]).stdout)
    lab.exec("client", "head -c %d %s/eth0.pcap > %s" % (size - 7, work, cut))
    res = lab.module("client", FQCN, {"path": cut})
    assert res.get("failed") is True and "truncated" in res["msg"] and cut in res["msg"]
    assert "Traceback" not in res.get("module_stderr", "")
    res = lab.module("client", FQCN, {"path": cut, "allow_truncated": True})
    assert res["truncated"] is True and res["packets"] > 0 and "truncated" in res["notes"][0]
    lab.exec("client", ["chmod", "600", work + "/eth0.pcapng"])
    res = lab.module("client", FQCN, {"path": work + "/eth0.pcapng"}, become_user="netdiag")
    assert res.get("failed") is True and "Permission denied" in res["msg"] and "eth0.pcapng" in res["msg"]
    res = lab.module("client", FQCN, {"path": "/etc/passwd"})
    assert res.get("failed") is True and "not a pcap or pcapng file" in res["msg"]
