# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""probe run as Ansible runs it (module file + ANSIBLE_MODULE_ARGS on stdin), against loopback only.

This test process opens the sockets: a TCP listener (open), a TCP port it bound and closed
(closed: the kernel answers RST), a UDP port likewise (closed: ICMP port unreachable), and an
HTTP server for the application check.  Targets are address literals: the module process does
no name lookup.
"""

import http.server
import os
import socket
import threading

import pytest

from .. import helpers


def run_module(args, check_mode=False):
    return helpers.run_module("probe", args, check_mode)


def free_port(kind):
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def ports():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield {"open": listener.getsockname()[1], "closed": free_port(socket.SOCK_STREAM),
           "udp_closed": free_port(socket.SOCK_DGRAM)}
    listener.close()


def states(result):
    return [(r["port"], r["protocol"], r["state"], r["reason"]) for r in result["results"]]


@pytest.mark.parametrize("check_mode", [False, True])
def test_connect_engine_on_loopback(ports, check_mode):
    result = run_module({"engine": "connect", "timeout": 0.5, "retries": 0, "targets": [
        {"host": "127.0.0.1", "ports": [ports["open"], ports["closed"], "%d/udp" % ports["udp_closed"]]}]},
        check_mode=check_mode)
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is False
    assert result["engine"] == "connect"
    assert states(result) == [(ports["open"], "tcp", "open", "syn-ack"), (ports["closed"], "tcp", "closed", "reset"),
                              (ports["udp_closed"], "udp", "closed", "port-unreach")]
    udp = result["results"][2]["reply"]
    assert (udp["kind"], udp["icmp_type"], udp["icmp_code"], udp["sender"], udp["sender_is_target"]) == \
        ("icmp", 3, 3, "127.0.0.1", True)
    assert result["summary"] == {"open": 1, "closed": 2, "filtered": 0, "open|filtered": 0, "unreachable": 0,
                                 "rate_limited": 0}
    assert all(r["target"] == "127.0.0.1" and r["family"] == "ipv4" and r["rate_limited"] is False
               for r in result["results"])


def test_ipv6_loopback_and_port_ranges(ports):
    listener = socket.socket(socket.AF_INET6)
    listener.bind(("::1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        result = run_module({"engine": "connect", "timeout": 0.5, "retries": 0,
                             "targets": [{"host": "::1", "ports": ["%d-%d" % (port, port)]}]})
    finally:
        listener.close()
    assert "failed" not in result, result.get("msg")
    assert [(r["address"], r["family"], r["port"], r["state"]) for r in result["results"]] == \
        [("::1", "ipv6", port, "open")]


@pytest.mark.skipif(os.geteuid() != 0, reason="the raw engine needs root")
def test_auto_picks_the_raw_engine_as_root(ports):
    result = run_module({"timeout": 0.5, "retries": 0, "targets": [
        {"host": "127.0.0.1", "ports": [ports["open"], ports["closed"]]}, {"host": "127.0.0.1", "protocol": "icmp"}]})
    assert "failed" not in result, result.get("msg")
    assert (result["engine"], result["engine_reason"]) == ("raw", "raw sockets available")
    assert states(result) == [(ports["open"], "tcp", "open", "syn-ack"), (ports["closed"], "tcp", "closed", "reset"),
                              (None, "icmp", "open", "echo-reply")]
    assert result["results"][0]["reply"]["ttl"] == 64  # only the raw engine sees a SYN-ACK's TTL


@pytest.fixture
def http_server():
    """A loopback HTTP server that answers HEAD / with 204 and records the requests."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 (http.server's naming)
            seen.append((self.command, self.path))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            return None

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], seen
    httpd.shutdown()
    httpd.server_close()


def test_http_application_check(http_server):
    port, seen = http_server
    result = run_module({"engine": "connect", "app_check": "http", "timeout": 0.5,
                         "targets": [{"host": "127.0.0.1", "ports": [port]}]})
    assert "failed" not in result, result.get("msg")
    app = result["results"][0]["app"]
    assert (app["check"], app["answered"], app["error"]) == ("http", True, None)
    assert app["data"].startswith("HTTP/1.") and " 204 " in app["data"]
    assert seen == [("HEAD", "/")]


@pytest.mark.parametrize("args,needle", [
    ({"targets": [{"host": "127.0.0.1", "ports": [0]}]}, "invalid port '0': must be between 1 and 65535"),
    ({"targets": [{"host": "127.0.0.1", "ports": [65536]}]}, "invalid port '65536': must be between 1 and 65535"),
    ({"targets": [{"host": "127.0.0.1", "ports": ["70000/udp"]}]}, "invalid port '70000': must be between 1 and 65535"),
    ({"targets": [{"host": "127.0.0.1", "ports": ["9000-8000"]}]}, "invalid port range '9000-8000': 9000 is greater than 8000"),
    ({"targets": [{"host": "127.0.0.1", "ports": ["8\u00b2"]}]}, "invalid port '8\u00b2': not a number"),
    ({"targets": [{"host": "127.0.0.1", "ports": ["\uff18\uff10/udp"]}]}, "invalid port '\uff18\uff10': not a number"),
    ({"targets": [{"host": "10.0.0.999", "ports": [80]}]}, "invalid target host '10.0.0.999': not an IPv4 address"),
    ({"targets": [{"host": "fe80::zz", "ports": [80]}]}, "invalid target host 'fe80::zz': not an IPv6 address"),
    ({"targets": [{"host": "127.0.0.1"}]}, "target '127.0.0.1': protocol tcp needs ports"),
    ({"targets": [{"host": "127.0.0.1", "protocol": "icmp", "ports": [80]}]}, "protocol icmp takes no ports (got [80])"),
    ({"targets": [{"host": "127.0.0.1", "ports": ["1-20000"]}]}, "port specs ['1-20000'] expand to more than 10000 ports"),
    ({"targets": [{"host": "127.0.0.1", "ports": [80]}], "timeout": -1}, "invalid timeout -1.0"),
    ({"targets": [{"host": "127.0.0.1", "ports": [80]}], "rate": 0}, "invalid rate 0.0"),
    ({"targets": [{"host": "127.0.0.1", "ports": [80]}], "engine": "warp"},
     "value of engine must be one of: auto, raw, connect, got: warp"),
    ({"targets": [{"host": "127.0.0.1", "ports": [80]}], "retries": "many"}, "argument 'retries' is of type str"),
    ({"targets": [{"ports": [80]}]}, "missing required arguments: host"),
    ({}, "missing required arguments: targets"),
])
def test_bad_input_fails_naming_the_value(args, needle):
    result = run_module(args)
    assert result["failed"] is True
    assert needle in result["msg"]
    assert not result.get("changed") and "results" not in result
