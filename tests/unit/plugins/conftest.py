# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for every unit test: a guard that fails any connection or name lookup that is not
loopback (no real cloud endpoint or lab address, ever); for the cloud tests a moto EC2 server
on loopback and stub HTTP servers."""

import http.server
import ipaddress
import os
import socket
import threading
import urllib.request

import pytest


_real_connect = socket.socket.connect
_real_getaddrinfo = socket.getaddrinfo


def _loopback(host):
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch, tmp_path):
    """Refuse every non-loopback connection or lookup, and hide the real cloud configuration."""

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            raise AssertionError("test tried to connect to %r: only loopback is allowed" % (address,))
        return _real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.rstrip(".").endswith(".invalid"):  # RFC 6761: never resolves
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if host is not None and not _loopback(host):
            raise AssertionError("test tried to resolve %r: only loopback is allowed" % (host,))
        return _real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for var in list(os.environ):
        if var.startswith(("AWS_", "ALIBABA_CLOUD_", "ALICLOUD_")):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto_server():
    """A real moto EC2 endpoint on 127.0.0.1 (a free port), always stopped."""
    pytest.importorskip("boto3", reason="boto3 is needed (requirements/cloud.txt)")
    server_mod = pytest.importorskip("moto.server", reason="moto[server] is needed (requirements/cloud.txt)")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield "http://%s:%d" % (host, port)
    finally:
        server.stop()


@pytest.fixture
def moto_url(moto_server):
    """The moto endpoint, emptied before the test."""
    req = urllib.request.Request(moto_server + "/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    return moto_server


@pytest.fixture
def ec2(moto_url):
    import boto3
    return boto3.client("ec2", region_name="eu-west-1", endpoint_url=moto_url,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


class StubServer:
    """A loopback HTTP server whose answers a test scripts; it records every request."""

    def __init__(self, handler):
        self.requests = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                stub.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                      "body": body})
                status, headers, payload = handler(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                return None

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stub_server():
    servers = []

    def start(handler):
        server = StubServer(handler)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.stop()
