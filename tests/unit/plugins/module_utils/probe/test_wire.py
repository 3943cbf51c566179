# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replay real captures (tests/unit/fixtures/probe/README.md) through the probe's parsers
and the raw engine's matcher: what a user would read in the result must be what the wire
showed."""

import json
import os
import struct

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.probe import engine_raw
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import scheduler
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import wire

from ...helpers import fixture

FIX = fixture("probe")
CLIENT = "10.200.200.2"
SERVER = "10.200.201.2"
ROUTER = "10.200.200.1"
# from the capture (README): raw engine source ports and echo id
TCP_SPORT, UDP_SPORT, ECHO_ID = 58429, 38731, 34619


def read_pcap(path):
    """Minimal classic-pcap reader (Ethernet link type): list of IPv4 packets (bytes)."""
    with open(path, "rb") as fh:
        data = fh.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    assert linktype == 1
    out = []
    off = 24
    while off + 16 <= len(data):
        _s, _us, incl, _orig = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if frame[12:14] == b"\x08\x00":
            out.append(frame[14:])
    return out


@pytest.fixture(scope="module")
def packets():
    return read_pcap(os.path.join(FIX, "raw-engine-probe.pcap"))


def _inbound(packets, proto):
    return [p for p in packets if p[9] == proto and p[16:20] == bytes(map(int, CLIENT.split(".")))]


def test_icmp_errors_quote_the_probe_and_name_the_sender(packets):
    errors = [wire.parse_icmp4(p) for p in _inbound(packets, wire.PROTO_ICMP)]
    errors = [e for e in errors if e and e["icmp_type"] == 3]
    seen = dict(((e["quoted"]["proto"], e["quoted"]["dport"]), e) for e in errors)
    # server rejects: 81 port-unreachable, 82 host-prohibited, 83 admin-prohibited
    assert (seen[(6, 81)]["icmp_code"], seen[(6, 81)]["sender"], seen[(6, 81)]["ttl"]) == (3, SERVER, 63)
    assert seen[(6, 82)]["icmp_code"] == 10
    assert seen[(6, 83)]["icmp_code"] == 13
    # the router's forward-chain reject: sender is the router, one hop closer (TTL 64)
    assert (seen[(6, 86)]["icmp_code"], seen[(6, 86)]["sender"], seen[(6, 86)]["ttl"]) == (13, ROUTER, 64)
    # UDP to a port with no listener: the kernel's port-unreachable
    assert seen[(17, 53)]["icmp_code"] == 3 and seen[(17, 53)]["quoted"]["sport"] == UDP_SPORT
    for e in errors:
        assert e["quoted"]["dst"] == SERVER and e["quoted"]["src"] == CLIENT
    # no ICMP for the dropped ports
    assert (6, 84) not in seen and (6, 87) not in seen


def test_tcp_replies_parse(packets):
    segs = [wire.parse_tcp4(p) for p in _inbound(packets, wire.PROTO_TCP)]
    by_port = dict((s["sport"], s) for s in segs)
    assert by_port[80]["flags"] & (wire.TCP_SYN | wire.TCP_ACK) == wire.TCP_SYN | wire.TCP_ACK
    assert by_port[79]["flags"] & wire.TCP_RST and by_port[85]["flags"] & wire.TCP_RST
    assert all(s["dport"] == TCP_SPORT and s["ttl"] == 63 for s in segs)


def test_built_syn_matches_the_captured_one_byte_for_byte(packets):
    syns = [p for p in packets if p[9] == wire.PROTO_TCP and p[12:16] == bytes(map(int, CLIENT.split(".")))]
    syn = syns[0]
    ihl = (syn[0] & 0x0F) * 4
    seg = wire.parse_tcp4(syn)
    assert seg["flags"] == wire.TCP_SYN
    built = wire.build_tcp_syn(CLIENT, SERVER, seg["sport"], seg["dport"], seg["seq"])
    assert built == syn[ihl:]


def test_captured_echo_request_matches_builder(packets):
    out = [p for p in packets if p[9] == wire.PROTO_ICMP and p[12:16] == bytes(map(int, CLIENT.split(".")))]
    ihl = (out[0][0] & 0x0F) * 4
    assert wire.build_icmp_echo(ECHO_ID, 1) == out[0][ihl:]


def _replay_engine(seq_base):
    eng = engine_raw.RawEngine.__new__(engine_raw.RawEngine)   # no sockets: matcher only
    eng.sport, eng.uport, eng.ident, eng.seq_base = TCP_SPORT, UDP_SPORT, ECHO_ID, seq_base
    eng.pending = {}
    return eng


def test_replay_through_the_raw_engine_classifies_like_the_live_run(packets):
    """Feed every captured inbound packet to the raw engine's matcher, as the sockets would."""
    first_syn = wire.parse_tcp4([p for p in packets if p[9] == 6][0])
    eng = _replay_engine((first_syn["seq"] - first_syn["dport"] * 7919) & 0xFFFFFFFF)
    probes = {}
    for port in range(79, 88):
        p = scheduler.Probe({"target": SERVER, "address": SERVER, "family": 4, "port": port, "protocol": "tcp"}, port)
        probes[(port, "tcp")] = p
    probes[(53, "udp")] = scheduler.Probe({"target": SERVER, "address": SERVER, "family": 4, "port": 53,
                                           "protocol": "udp"}, 0)
    probes[(None, "icmp")] = scheduler.Probe({"target": SERVER, "address": SERVER, "family": 4, "port": None,
                                              "protocol": "icmp"}, 0)
    for p in probes.values():
        p.engine = "raw"
        p.attempts = 1
        eng.pending[p.key] = p
    for pkt in packets:
        hit = eng.handle_tcp_packet(pkt) if pkt[9] == 6 else eng.handle_icmp_packet(pkt) if pkt[9] == 1 else None
        if hit is not None:
            hit[0].record(hit[1], 0.0)
    got = dict((k, (p.result()["state"], p.result()["reason"])) for k, p in probes.items())
    assert got == {
        (79, "tcp"): ("closed", "reset"),
        (80, "tcp"): ("open", "syn-ack"),
        (81, "tcp"): ("filtered", "port-unreach"),
        (82, "tcp"): ("filtered", "host-prohibited"),
        (83, "tcp"): ("filtered", "admin-prohibited"),
        (84, "tcp"): ("filtered", "no-response"),
        (85, "tcp"): ("closed", "reset"),
        (86, "tcp"): ("filtered", "admin-prohibited"),
        (87, "tcp"): ("filtered", "no-response"),
        (53, "udp"): ("closed", "port-unreach"),
        (None, "icmp"): ("open", "echo-reply"),
    }
    r86 = probes[(86, "tcp")].result()["reply"]
    assert r86 == {"kind": "icmp", "icmp_type": 3, "icmp_code": 13,
                   "icmp_name": "destination-unreachable/admin-prohibited",
                   "sender": ROUTER, "sender_is_target": False, "ttl": 64}
    assert probes[(81, "tcp")].result()["reply"]["sender_is_target"] is True


def test_icmp_quoting_someone_elses_probe_is_ignored(packets):
    eng = _replay_engine(0)
    eng.sport = TCP_SPORT + 1      # a different scan's source port
    p = scheduler.Probe({"target": SERVER, "address": SERVER, "family": 4, "port": 81, "protocol": "tcp"}, 0)
    eng.pending[p.key] = p
    assert all(eng.handle_icmp_packet(pkt) is None for pkt in _inbound(packets, wire.PROTO_ICMP))


def test_truncated_packets_are_rejected(packets):
    icmp_err = [p for p in _inbound(packets, wire.PROTO_ICMP) if wire.parse_icmp4(p)["icmp_type"] == 3][0]
    assert wire.parse_icmp4(icmp_err[:20 + 8 + 20 + 2]) is None     # quote cut inside the ports
    assert wire.parse_icmp4(b"\x45" + b"\x00" * 10) is None
    assert wire.parse_tcp4(icmp_err) is None                          # not TCP


def test_errqueue_ancillary_data_from_connect_sockets():
    with open(os.path.join(FIX, "errqueue-ancdata.json")) as fh:
        records = json.load(fh)["records"]
    got = []
    for rec in records:
        anc = [(lvl, typ, bytes.fromhex(h)) for lvl, typ, h in rec["ancdata"]]
        ee, ttl = wire.parse_errqueue_ancillary(anc)
        assert ee["origin"] == wire.SO_EE_ORIGIN_ICMP
        got.append((ee["icmp_type"], ee["icmp_code"], ee["offender"], ttl))
    assert got == [
        (3, 3, SERVER, 63),    # tcp 81: connect() says ECONNREFUSED, the queue says who and why
        (3, 10, SERVER, 63),   # tcp 82 host-prohibited
        (3, 13, ROUTER, 64),   # tcp 86 rejected by the router
        (3, 3, SERVER, 63),    # udp 53
    ]


def test_checksum_known_value():
    # RFC 1071 example: 0x0001 0xf203 0xf4f5 0xf6f7 -> sum 0xddf2, checksum 0x220d
    assert wire.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
