# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""trace run as Ansible runs it (module file + ANSIBLE_MODULE_ARGS on stdin), to loopback only:
the destination is one hop away, a listener this test opens (open) or a port it bound and
closed (closed).  Addresses are literals: the module process does no name lookup."""

import os
import socket

import pytest

from .. import helpers


def run_module(args, check_mode=False):
    return helpers.run_module("trace", args, check_mode)


def free_port(family=socket.AF_INET, kind=socket.SOCK_STREAM, host="127.0.0.1"):
    sock = socket.socket(family, kind)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("check_mode", [False, True])
def test_an_open_port_is_reached_at_hop_1(listener, check_mode):
    result = run_module({"address": "127.0.0.1", "port": listener, "timeout": 0.5}, check_mode=check_mode)
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is False
    assert (result["verdict"], result["state"], result["reached"]) == ("reached", "open", True)
    assert (result["address"], result["family"], result["protocol"], result["port"]) == ("127.0.0.1", "ipv4", "tcp", listener)
    assert [(h["ttl"], h["address"], h["reply"]) for h in result["hops"]] == [(1, "127.0.0.1", "syn-ack")]
    assert result["destination_ttl"] == 1 and result["blocking_hop"] is None
    assert result["last_responding_hop"] == {"ttl": 1, "address": "127.0.0.1"}
    assert result["reason"] == "127.0.0.1:%d/tcp reached at hop 1: syn-ack" % listener
    assert "target" not in result and "path_mtu" not in result


def test_a_closed_port_over_ipv6():
    port = free_port(socket.AF_INET6, host="::1")
    result = run_module({"address": "::1", "port": port, "timeout": 0.5})
    assert "failed" not in result, result.get("msg")
    assert (result["verdict"], result["state"], result["family"]) == ("reached", "closed", "ipv6")
    assert result["hops"][0]["reply"] == "rst"


def test_udp_with_the_path_mtu():
    port = free_port(kind=socket.SOCK_DGRAM)
    result = run_module({"address": "127.0.0.1", "port": port, "protocol": "udp", "mtu": True, "timeout": 0.5})
    assert "failed" not in result, result.get("msg")
    assert (result["verdict"], result["state"]) == ("reached", "closed")
    hop = result["hops"][0]
    assert (hop["reply"], hop["icmp_type"], hop["icmp_code"]) == ("icmp", 3, 3)
    mtu = result["path_mtu"]
    assert mtu["verdict"] == "confirmed" and mtu["mtu"] == mtu["local_mtu"] and mtu["udp_port"] == port
    assert mtu["reported_by"] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="an ICMP trace needs root or a ping socket")
def test_icmp_as_root():
    result = run_module({"address": "127.0.0.1", "protocol": "icmp", "timeout": 0.5})
    assert "failed" not in result, result.get("msg")
    assert (result["verdict"], result["port"], result["hops"][0]["reply"]) == ("reached", None, "echo-reply")


@pytest.mark.parametrize("args,needle", [
    ({"address": "127.0.0.1"}, "a tcp trace needs a port"),
    ({"address": "127.0.0.1", "port": 0}, "invalid port 0: must be between 1 and 65535"),
    ({"address": "127.0.0.1", "port": 65536}, "invalid port 65536: must be between 1 and 65535"),
    ({"address": "127.0.0.1", "port": 70000}, "invalid port 70000: must be between 1 and 65535"),
    ({"address": "127.0.0.1", "port": "8\u00b2"}, "argument 'port' is of type str and we were unable to convert to int"),
    ({"address": "127.0.0.1", "port": 80, "max_hops": 0}, "invalid max_hops 0: must be between 1 and 64"),
    ({"address": "127.0.0.1", "port": 80, "max_hops": 65}, "invalid max_hops 65: must be between 1 and 64"),
    ({"address": "127.0.0.1", "port": 80, "first_hop": 40}, "invalid first_hop 40: must be between 1 and 30"),
    ({"address": "127.0.0.1", "port": 80, "timeout": 0}, "invalid timeout 0.0: must be between 0.1 and 60"),
    ({"address": "127.0.0.1", "port": 80, "wave_size": 0}, "invalid wave_size 0: must be between 1 and 64"),
    ({"address": "127.0.0.1", "port": 80, "protocol": "sctp"}, "value of protocol must be one of: tcp, udp, icmp, got: sctp"),
    ({"address": "127.0.0.1", "port": 80, "mtu": "sometimes"}, "argument 'mtu' is of type str"),
    ({"port": 80}, "one of the following is required: address, targets"),
])
def test_bad_input_fails_naming_the_value(args, needle):
    result = run_module(args)
    assert result["failed"] is True
    assert needle in result["msg"]
    assert not result.get("changed") and "hops" not in result


def test_targets_trace_every_flow_in_one_call_with_the_single_trace_result(listener):
    closed = free_port()
    args = {"targets": [{"address": "127.0.0.1", "port": listener}, {"address": "127.0.0.1", "port": closed},
                        {"address": "::1", "port": free_port(socket.AF_INET6, host="::1")},
                        {"address": "127.0.0.1", "port": free_port(kind=socket.SOCK_DGRAM), "protocol": "udp"}],
            "timeout": 0.5, "max_hops": 4}
    result = run_module(args)
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is False
    got = [(r["target"], r["verdict"], r["state"], r["destination_ttl"]) for r in result["results"]]
    assert got == [("127.0.0.1", "reached", "open", 1), ("127.0.0.1", "reached", "closed", 1),
                   ("::1", "reached", "closed", 1), ("127.0.0.1", "reached", "closed", 1)]
    single = run_module({"address": "127.0.0.1", "port": closed, "timeout": 0.5, "max_hops": 4})
    many = result["results"][1]
    for key in ("verdict", "state", "reached", "blocking_hop", "last_responding_hop", "destination_ttl", "family"):
        assert many[key] == single[key], key
    assert [h["reply"] for h in many["hops"]] == [h["reply"] for h in single["hops"]]


def test_targets_and_address_are_exclusive_and_one_is_required(listener):
    both = run_module({"address": "127.0.0.1", "port": listener, "targets": [{"address": "127.0.0.1", "port": listener}]})
    assert both.get("failed") and "mutually exclusive" in both["msg"]
    none = run_module({"port": listener})
    assert none.get("failed") and "address" in none["msg"] and "targets" in none["msg"]


def test_a_bad_target_port_fails_naming_it():
    result = run_module({"targets": [{"address": "127.0.0.1", "port": 80}, {"address": "127.0.0.1", "port": 70000}]})
    assert result.get("failed") and "70000" in result["msg"]


def test_icmp_and_tcp_targets_in_one_call_as_root(listener):
    if os.geteuid() != 0:
        pytest.skip("an ICMP trace without a ping socket needs root (raw socket)")
    result = run_module({"targets": [{"address": "127.0.0.1", "protocol": "icmp"}, {"address": "127.0.0.1", "port": listener},
                                     {"address": "127.0.0.2", "protocol": "icmp"}], "timeout": 0.5, "max_hops": 3})
    assert "failed" not in result, result.get("msg")
    assert [(r["address"], r["protocol"], r["verdict"], r["hops"][0]["reply"]) for r in result["results"]] == [
        ("127.0.0.1", "icmp", "reached", "echo-reply"), ("127.0.0.1", "tcp", "reached", "syn-ack"),
        ("127.0.0.2", "icmp", "reached", "echo-reply")]
