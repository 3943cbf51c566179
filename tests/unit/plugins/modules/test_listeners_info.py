# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""listeners_info run as Ansible runs it (module file + ANSIBLE_MODULE_ARGS on stdin).

The sockets are real: this test process opens listeners on loopback (a random port) and
the module, run as a separate process, must report them with this process as the owner.
"""

import os
import socket

import pytest

from .. import helpers


def run_module(args, check_mode=False):
    return helpers.run_module('listeners_info', args, check_mode)


@pytest.fixture
def sockets():
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(7)
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.bind(("::1", 0))
    yield tcp.getsockname()[1], udp.getsockname()[1]
    tcp.close()
    udp.close()


def comm():
    with open("/proc/self/comm") as f:
        return f.read().strip()


def test_reports_our_listeners(sockets):
    tcp_port, udp_port = sockets
    result = run_module({"ports": [tcp_port, udp_port]})
    assert result["changed"] is False
    assert "failed" not in result, result.get("msg")
    got = sorted((l["protocol"], l["address"], l["port"], l["scope"], l["pids"]) for l in result["listeners"])
    want = [("tcp", "127.0.0.1", tcp_port, "loopback", [os.getpid()]),
            ("udp", "::1", udp_port, "loopback", [os.getpid()])]
    assert got == sorted(want)
    tcp = next(l for l in result["listeners"] if l["protocol"] == "tcp")
    assert (tcp["accept_queue"], tcp["accept_backlog"]) == (0, 7)
    assert tcp["process"] == comm()
    assert tcp["processes"][0]["uid"] == os.getuid()
    udp = next(l for l in result["listeners"] if l["protocol"] == "udp")
    assert udp["family"] == "ipv6" and udp["accepts_ipv4"] is False
    for key in ("net.core.somaxconn", "net.ipv4.ip_local_port_range", "net.ipv4.conf.all.rp_filter"):
        assert key in result["sysctls"]
    assert "TcpExtListenOverflows" in result["counters"]
    assert result["process_scan"]["enabled"] is True


def test_protocol_filter_and_no_process(sockets):
    tcp_port, udp_port = sockets
    result = run_module({"ports": [tcp_port, udp_port], "protocols": ["udp"], "include_process": False})
    assert [(l["protocol"], l["port"], l["pids"]) for l in result["listeners"]] == [("udp", udp_port, [])]
    assert result["process_scan"] == {"enabled": False, "complete": None, "unreadable_pids": []}


def test_port_spec_with_protocol(sockets):
    tcp_port, udp_port = sockets
    result = run_module({"ports": ["%d/udp" % tcp_port, "%d/udp" % udp_port]})
    assert [(l["protocol"], l["port"]) for l in result["listeners"]] == [("udp", udp_port)]


def test_check_mode_reports_the_same(sockets):
    tcp_port = sockets[0]
    result = run_module({"ports": [tcp_port]}, check_mode=True)
    assert result["changed"] is False
    assert [l["port"] for l in result["listeners"]] == [tcp_port]


@pytest.mark.parametrize("args,needle", [
    ({"ports": [70000]}, "70000"),
    ({"ports": ["80/icmp"]}, "icmp"),
    ({"ports": ["web"]}, "'web'"),
    ({"ports": ["8\u00b2"]}, "invalid port '8\u00b2': not a number"),
    ({"ports": ["\u0663/tcp"]}, "invalid port '\u0663': not a number"),
    ({"ports": [0]}, "invalid port '0': must be between 1 and 65535"),
    ({"ports": ["9000-8000"]}, "invalid port range '9000-8000': 9000 is greater than 8000"),
    ({"protocols": ["sctp"]}, "sctp"),
    ({"include_process": "maybe"}, "maybe"),
    ({"port": [80]}, "port"),
])
def test_bad_arguments_fail_naming_the_value(args, needle):
    result = run_module(args)
    assert result.get("failed") is True
    assert needle in result["msg"]


def test_interface_addresses_both_families(sockets):
    result = run_module({"ports": [sockets[0]]})
    addrs = {(a["interface"], a["family"], a["address"]) for a in result["interface_addresses"]}
    assert ("lo", "ipv4", "127.0.0.1") in addrs
    if socket.has_ipv6 and ("lo", "ipv6", "::1") not in addrs:
        with open("/proc/net/if_inet6") as fh:
            assert "00000000000000000000000000000001" not in fh.read()
