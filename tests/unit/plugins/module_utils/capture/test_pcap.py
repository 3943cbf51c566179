# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pcap_info's library on real captures (tests/unit/fixtures/pcap/README.md): the verdict per
flow, the ICMP errors with who sent them, the resets and unanswered SYNs must be what the
probes saw when the captures were recorded in the lab; broken files must fail clearly."""

import gzip
import json
import os
import shutil
import struct

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.capture import containers
from ansible_collections.netdiag.reachability.plugins.module_utils.capture import flows as capture_flows
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, ParseError

from ...helpers import fixture

FIX = fixture("pcap")
LAB = ["client-eth0.pcap", "client-eth0.pcapng", "client-any-nano.pcap"]
CLIENT, ROUTER = "10.200.1.10", "10.200.1.1"

# source port -> (protocol, target, port, state, reason, ICMP sender or None); see probes.jsonl
EXPECTED = {
    47010: ("tcp", "10.200.2.10", 80, "open", "syn-ack", None),
    47011: ("tcp", "10.200.2.13", 8080, "closed", "reset", None),
    47012: ("udp", "10.200.2.14", 53, "closed", "port-unreach", "10.200.2.14"),
    47013: ("udp", "10.200.2.10", 5353, "open", "udp-response", None),
    47014: ("tcp", "10.200.2.15", 80, "filtered", "host-prohibited", "10.200.2.15"),
    47015: ("tcp", "10.200.2.11", 80, "filtered", "admin-prohibited", "10.200.2.11"),
    47016: ("tcp", "10.200.2.12", 80, "filtered", "port-unreach", "10.200.2.12"),
    47017: ("tcp", "10.200.2.18", 80, "filtered", "no-response", None),
    47018: ("tcp", "10.200.2.10", 8082, "filtered", "admin-prohibited", ROUTER),
    47019: ("tcp", "10.200.2.10", 8081, "filtered", "no-response", None),
}


def fixture(name):
    return os.path.join(FIX, name)


def by_sport(result):
    return dict((f["sport"], f) for f in result["flows"] if f["protocol"] != "icmp")


@pytest.fixture(scope="module", params=LAB)
def lab_capture(request):
    return request.param, capture_flows.analyze(fixture(request.param))


def test_every_probe_gets_the_verdict_the_probe_saw(lab_capture):
    name, res = lab_capture
    flows = by_sport(res)
    got = dict((sport, (f["protocol"], f["dst"], f["dport"], f["state"], f["reason"], f["icmp"] and f["icmp"]["sender"]))
               for sport, f in flows.items())
    assert got == EXPECTED
    assert all(f["src"] == CLIENT and f["family"] == "ipv4" for f in res["flows"])
    # what connect()/recv() reported in the lab while recording (probes.jsonl) agrees
    with open(fixture("probes.jsonl")) as fh:
        probes = [json.loads(line) for line in fh if '"tries"' in line]
    errno_of = {"open": "open", "reply": "open", "closed:reset": "ECONNREFUSED", "closed:port-unreach": "ECONNREFUSED",
                "filtered:port-unreach": "ECONNREFUSED", "filtered:host-prohibited": "EHOSTUNREACH",
                "filtered:admin-prohibited": "EHOSTUNREACH", "filtered:no-response": "timeout"}
    for probe in probes:
        sport, seen = probe["tries"][-1]
        flow = flows[sport]
        key = "open" if flow["state"] == "open" else "%s:%s" % (flow["state"], flow["reason"])
        assert errno_of[key] == {"reply": "open"}.get(seen, seen), (probe, flow)


def test_seed_002_host_administratively_prohibited(lab_capture):
    """Seed 002: a SYN answered by ICMP type 3 code 10 - name it, and say the target sent it."""
    dummy, res = lab_capture
    flow = by_sport(res)[47014]
    assert (flow["icmp"]["type"], flow["icmp"]["code"]) == (3, 10)
    assert flow["icmp"]["name"] == "destination-unreachable/host-prohibited"
    assert flow["icmp"]["sender_is_target"] is True
    assert flow["syns"] == 1 and flow["packets_out"] == 1 and flow["packets_in"] == 0
    err = [e for e in res["icmp_errors"] if e["flow"]["sport"] == 47014]
    assert len(err) == 1 and err[0]["matched"] is True and err[0]["quotes"] == "request"
    assert err[0]["flow"] == {"protocol": "tcp", "src": CLIENT, "sport": 47014, "dst": "10.200.2.15", "dport": 80}
    assert err[0]["to"] == CLIENT


def test_router_reject_names_the_router_one_hop_closer(lab_capture):
    dummy, res = lab_capture
    flows = by_sport(res)
    router, target = flows[47018]["icmp"], flows[47015]["icmp"]
    assert router["sender"] == ROUTER and router["sender_is_target"] is False and router["code"] == 13
    assert target["sender_is_target"] is True and target["code"] == 13
    assert router["ttl"] == target["ttl"] + 1


def test_icmp_errors_resets_and_unanswered_syns(lab_capture):
    dummy, res = lab_capture
    assert sorted((e["flow"]["sport"], e["type"], e["code"], e["sender"]) for e in res["icmp_errors"]) == [
        (47012, 3, 3, "10.200.2.14"), (47014, 3, 10, "10.200.2.15"), (47015, 3, 13, "10.200.2.11"),
        (47016, 3, 3, "10.200.2.12"), (47018, 3, 13, ROUTER)]
    assert [(s["sport"], s["dst"], s["dport"], s["syns"]) for s in res["unanswered_syns"]] == [
        (47017, "10.200.2.18", 80, 4), (47019, "10.200.2.10", 8081, 4)]
    assert len(res["resets"]) == 1
    rst = res["resets"][0]
    assert (rst["sender"], rst["sport"], rst["dport"], rst["sent_by"], rst["answers_syn"]) == (
        "10.200.2.13", 8080, 47011, "responder", True)
    assert res["summary"] == {"open": 3, "closed": 2, "filtered": 6, "open|filtered": 0, "unreachable": 0,
                              "flows": 11, "icmp_errors": 5, "unanswered_syns": 2, "resets": 1, "packets": 36,
                              "skipped_not_ip": 0, "skipped_other": 0}
    ping = [f for f in res["flows"] if f["protocol"] == "icmp"]
    assert [(f["dst"], f["state"], f["reason"]) for f in ping] == [("10.200.2.10", "open", "echo-reply")]
    assert res["truncated"] is False and res["max_packets_reached"] is False and res["notes"] == []


def test_open_flow_replies_and_timing(lab_capture):
    dummy, res = lab_capture
    flow = by_sport(res)[47010]
    assert [r["kind"] for r in flow["replies"]] == ["syn-ack"]
    assert flow["replies"][0]["sender"] == "10.200.2.10"
    assert flow["packets"] == 12 and flow["packets_out"] == 6 and flow["packets_in"] == 6
    assert 0 < flow["rtt_ms"] < 50
    assert flow["first_seen"] <= flow["last_seen"]


def test_three_recorders_agree():
    """tcpdump eth0 (pcap, usec), dumpcap eth0 (pcapng, nsec), tcpdump any (SLL2, nsec): same packets."""
    results = [capture_flows.analyze(fixture(n)) for n in LAB]
    assert [r["format"] for r in results] == ["pcap", "pcapng", "pcap"]
    assert [r["link_types"] for r in results] == [["EN10MB"], ["EN10MB"], ["LINUX_SLL2"]]

    def strip(res):
        return [dict((k, v) for k, v in f.items() if k not in ("first_seen", "last_seen", "rtt_ms", "replies", "icmp"))
                for f in res["flows"]]
    assert strip(results[0]) == strip(results[1]) == strip(results[2])
    # timestamps: the pcapng/nano ones are the microsecond ones to within a microsecond
    for other in results[1:]:
        for a, b in zip(results[0]["flows"], other["flows"]):
            assert abs(a["first_seen"] - b["first_seen"]) < 2e-6


@pytest.mark.parametrize("name", LAB + ["v6-lo.pcap"])
def test_reader_matches_scapy(name):
    """The container reader returns the same bytes and timestamps as scapy's readers."""
    scapy_utils = pytest.importorskip("scapy.utils")
    reader = scapy_utils.RawPcapReader(fixture(name))     # switches to RawPcapNgReader on its own
    theirs = []
    for data, meta in reader:
        if hasattr(meta, "tshigh"):
            stamp = ((meta.tshigh << 32) | meta.tslow) / float(meta.tsresol)
        else:
            stamp = meta.sec + meta.usec * (1e-9 if reader.nano else 1e-6)
        theirs.append((round(stamp, 6), bytes(data)))
    reader.close()
    stream, fmt = containers.open_capture(fixture(name))
    records = containers.pcapng_records(stream) if fmt == "pcapng" else containers.pcap_records(stream)
    ours = [(round(stamp, 6), data) for stamp, dummy, data, dummy2 in records]
    stream.fh.close()
    assert len(ours) == len(theirs) > 10
    assert [d for s, d in ours] == [d for s, d in theirs]
    assert all(abs(a[0] - b[0]) < 2e-6 for a, b in zip(ours, theirs))


def test_ipv6_icmpv6_unreachables():
    res = capture_flows.analyze(fixture("v6-lo.pcap"))
    got = dict((f["dport"], (f["protocol"], f["state"], f["reason"], f["icmp"] and (f["icmp"]["type"], f["icmp"]["code"])))
               for f in res["flows"])
    assert got == {
        80: ("tcp", "open", "syn-ack", None),
        81: ("tcp", "filtered", "admin-prohibited", (1, 1)),
        82: ("tcp", "filtered", "no-response", None),
        83: ("tcp", "closed", "reset", None),
        53: ("udp", "closed", "port-unreach", (1, 4)),
    }
    assert all(f["family"] == "ipv6" and f["src"] == "::1" for f in res["flows"])
    names = sorted(set(e["name"] for e in res["icmp_errors"]))
    assert names == ["destination-unreachable/admin-prohibited", "destination-unreachable/port-unreachable"]
    # the kernel retransmitted the SYN to 81 once and got a second ICMPv6 error
    assert [e["flow"]["dport"] for e in res["icmp_errors"]] == [81, 81, 53]
    assert [(s["dport"], s["syns"]) for s in res["unanswered_syns"]] == [(82, 3)]


def test_filters_host_and_port():
    res = capture_flows.analyze(fixture("client-eth0.pcap"), host="10.200.2.10")
    assert sorted((f["protocol"], f["dport"]) for f in res["flows"]) == [
        ("icmp", None), ("tcp", 80), ("tcp", 8081), ("tcp", 8082), ("udp", 5353)]
    assert [e["sender"] for e in res["icmp_errors"]] == [ROUTER]      # about healthy:8082
    assert res["resets"] == [] and res["summary"]["flows"] == 5 and res["packets"] == 36
    res = capture_flows.analyze(fixture("client-eth0.pcap"), port=80)
    assert sorted(f["dst"] for f in res["flows"]) == ["10.200.2.10", "10.200.2.11", "10.200.2.12", "10.200.2.15",
                                                      "10.200.2.18"]
    assert sorted(e["sender"] for e in res["icmp_errors"]) == ["10.200.2.11", "10.200.2.12", "10.200.2.15"]
    res = capture_flows.analyze(fixture("client-eth0.pcap"), host=ROUTER)      # errors the router sent
    assert res["flows"] == [] and [e["flow"]["dport"] for e in res["icmp_errors"]] == [8082]
    res = capture_flows.analyze(fixture("client-eth0.pcap"), host="10.200.2.13", port=8080)
    assert [r["sender"] for r in res["resets"]] == ["10.200.2.13"]


@pytest.mark.parametrize("kwargs, needle", [
    ({"host": "10.200.2.300"}, "'10.200.2.300'"),
    ({"host": "healthy"}, "'healthy'"),
    ({"port": 70000}, "70000"),
    ({"port": "http"}, "'http'"),
    ({"max_packets": 0}, "max_packets 0"),
    ({"max_packets": "many"}, "'many'"),
])
def test_bad_options_are_named(kwargs, needle):
    with pytest.raises(InputError) as info:
        capture_flows.analyze(fixture("client-eth0.pcap"), **kwargs)
    assert needle in str(info.value)


def test_max_packets():
    res = capture_flows.analyze(fixture("client-eth0.pcapng"), max_packets=14)
    assert res["packets"] == 14 and res["max_packets_reached"] is True
    assert "max_packets=14" in res["notes"][0]
    assert [f["sport"] for f in res["flows"]] == [47010, 47011]    # packet 14 is the RST of 47011
    assert by_sport(res)[47011]["state"] == "closed"
    res = capture_flows.analyze(fixture("client-eth0.pcapng"), max_packets=36)
    assert res["packets"] == 36 and res["max_packets_reached"] is False and res["notes"] == []


def _cut(tmp_path, name, size):
    with open(fixture(name), "rb") as fh:
        data = fh.read()
    path = str(tmp_path / ("cut-" + name))
    with open(path, "wb") as fh:
        fh.write(data[:size])
    return path, len(data)


@pytest.mark.parametrize("name", LAB + ["v6-lo.pcap"])
def test_every_truncation_is_a_clear_error(tmp_path, name):
    """Cut a real capture at (nearly) every byte: never a traceback, always ParseError naming
    the file, unless the cut falls exactly between two records or blocks."""
    dummy, size = _cut(tmp_path, name, 0)
    valid = 0
    for cut in list(range(1, 300)) + list(range(300, size, 3)):
        path, dummy = _cut(tmp_path, name, cut)
        try:
            res = capture_flows.analyze(path)
        except ParseError as exc:
            msg = str(exc)
            assert path in msg and ("truncated" in msg or "too short" in msg), msg
            continue
        valid += 1
        assert res["packets"] <= 36 and not res["truncated"], cut
    assert valid < 40       # record boundaries only


def test_truncated_names_packet_and_offset(tmp_path):
    path, dummy = _cut(tmp_path, "client-eth0.pcap", 24 + 16 + 74 + 10)   # inside packet 2's record header
    with pytest.raises(containers.TruncatedCapture) as info:
        capture_flows.analyze(path)
    assert "record header of packet #2 at byte offset 114 has 10 of 16 bytes" in str(info.value)
    path, dummy = _cut(tmp_path, "client-eth0.pcap", 24 + 16 + 30)        # inside packet 1's data
    with pytest.raises(containers.TruncatedCapture) as info:
        capture_flows.analyze(path)
    assert "packet #1 (record at byte offset 24) at byte offset 40 needs 74 bytes, the file has 30" in str(info.value)


def test_allow_truncated_explains_what_came_before(tmp_path):
    path, size = _cut(tmp_path, "client-eth0.pcapng", 4000)
    res = capture_flows.analyze(path, allow_truncated=True)
    assert res["truncated"] is True and 0 < res["packets"] < 36
    assert "truncated" in res["notes"][0] and "explained the %d packets" % res["packets"] in res["notes"][0]
    assert by_sport(res)[47014]["reason"] == "host-prohibited"


def test_not_a_capture(tmp_path):
    with pytest.raises(ParseError) as info:
        capture_flows.analyze(fixture("README.md"))
    assert "not a pcap or pcapng file" in str(info.value) and "README.md" in str(info.value)
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(ParseError) as info:
        capture_flows.analyze(str(empty))
    assert "empty file" in str(info.value)
    with pytest.raises(InputError) as info:
        capture_flows.analyze(str(tmp_path / "missing.pcap"))
    assert "missing.pcap" in str(info.value) and "No such file" in str(info.value)
    with pytest.raises(InputError) as info:
        capture_flows.analyze(str(tmp_path))
    assert "is a directory" in str(info.value)


def test_corrupt_pcapng_block_length(tmp_path):
    """A hand-corrupted copy: the first packet block's trailing length no longer matches."""
    with open(fixture("client-eth0.pcapng"), "rb") as fh:
        data = bytearray(fh.read())
    off = 0
    while struct.unpack("<I", bytes(data[off:off + 4]))[0] != 6:       # first enhanced packet block
        off += struct.unpack("<I", bytes(data[off + 4:off + 8]))[0]
    length = struct.unpack("<I", bytes(data[off + 4:off + 8]))[0]
    data[off + length - 4] ^= 0xFF
    path = tmp_path / "corrupt.pcapng"
    path.write_bytes(bytes(data))
    with pytest.raises(ParseError) as info:
        capture_flows.analyze(str(path))
    assert "corrupt pcapng block at byte offset %d" % off in str(info.value)


def test_gzip_compressed(tmp_path):
    path = str(tmp_path / "c.pcapng.gz")
    with open(fixture("client-eth0.pcapng"), "rb") as src, gzip.open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    res = capture_flows.analyze(path)
    assert res["format"] == "pcapng+gzip" and res["summary"]["flows"] == 11
    with open(path, "rb") as fh:
        data = fh.read()
    cut = tmp_path / "cut.pcapng.gz"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(containers.TruncatedCapture) as info:
        capture_flows.analyze(str(cut))
    assert "cut.pcapng.gz" in str(info.value)
