# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probe engines against real packets, in scratch network namespaces of their own.

    ndx-pr-tc 10.200.200.2 --- .1 ndx-pr-tr 10.200.201.1 --- .2 ndx-pr-ts
    (client)                   (router, forwards)              (server)

The server has real listeners (TCP on 79-90 except where noted, a loopback-only one, a
UDP echo) and a real nftables ruleset; the router rejects/drops in its forward chain.
Each engine runs inside the client namespace as root (raw, connect) and as ``nobody``
(connect), with the target's Python (/usr/bin/python3), and must see the same thing.
Needs root; everything is removed afterwards, also when a test fails.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, ".collections")
C, R, S = "ndx-pr-tc", "ndx-pr-tr", "ndx-pr-ts"
SERVER, ROUTER = "10.200.201.2", "10.200.200.1"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build network namespaces"),
    pytest.mark.slow,
]

SERVER_RULES = """
table inet ndxpr {
  chain input {
    type filter hook input priority filter; policy accept;
    tcp dport 81 reject with icmp type port-unreachable
    tcp dport 82 reject with icmp type host-prohibited
    tcp dport 83 reject with icmp type admin-prohibited
    tcp dport 84 drop
    tcp dport 85 reject with tcp reset
    tcp dport 3000-3149 reject with icmp type admin-prohibited
    tcp dport 3150-3299 drop
  }
}
"""
ROUTER_RULES = """
table inet ndxpr {
  chain forward {
    type filter hook forward priority filter; policy accept;
    ip daddr 10.200.201.2 tcp dport 86 reject with icmp type admin-prohibited
    ip daddr 10.200.201.2 tcp dport 87 drop
  }
}
"""
# Listeners on the server: every rejected/dropped port has a listener behind the
# firewall (like the lab's fwd-ipt host), 80 answers HTTP, 88 sends a banner,
# 89 accepts and says nothing; 8080 is bound to 127.0.0.1 only.
LISTENER = textwrap.dedent("""
    import selectors, socket
    sel = selectors.DefaultSelector()
    def listen(addr, port):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port)); s.listen(64); s.setblocking(False); sel.register(s, selectors.EVENT_READ, port)
    for p in [80, 81, 82, 83, 84, 85, 86, 87, 88, 89] + list(range(3000, 3300)):
        listen("0.0.0.0", p)
    listen("127.0.0.1", 8080)
    held = []
    while True:
        for key, _ in sel.select():
            conn, _a = key.fileobj.accept()
            if key.data == 80:
                conn.recv(1024); conn.sendall(b"HTTP/1.0 200 OK\\r\\n\\r\\n"); conn.close()
            elif key.data == 88:
                conn.sendall(b"SSH-2.0-ndxpr\\r\\n"); conn.close()
            else:
                held.append(conn)
""")


def sh(*argv, **kw):
    check = kw.pop("check", True)
    return subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=check, **kw)


def teardown_namespaces():
    for ns in (C, R, S):
        if sh("ip", "netns", "pids", ns, check=False).returncode == 0:
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", ns, check=False)


def wait_listening(ns, port, proto="tcp", timeout=10):
    flag = "-ltnH" if proto == "tcp" else "-lunH"
    end = time.time() + timeout
    while time.time() < end:
        if (":%d " % port) in sh("ip", "netns", "exec", ns, "ss", flag, check=False).stdout:
            return
        time.sleep(0.1)
    raise RuntimeError("listener %s/%d did not appear in %s" % (port, proto, ns))


@pytest.fixture(scope="module")
def scratch():
    teardown_namespaces()
    try:
        for ns in (C, R, S):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", "ndxprt-c0", "netns", C, "type", "veth", "peer", "name", "ndxprt-r0", "netns", R)
        sh("ip", "link", "add", "ndxprt-s0", "netns", S, "type", "veth", "peer", "name", "ndxprt-r1", "netns", R)
        for ns, dev, addr in ((C, "ndxprt-c0", "10.200.200.2/24"), (R, "ndxprt-r0", "10.200.200.1/24"),
                              (R, "ndxprt-r1", "10.200.201.1/24"), (S, "ndxprt-s0", "10.200.201.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", C, "route", "add", "default", "via", "10.200.200.1")
        sh("ip", "-n", S, "route", "add", "default", "via", "10.200.201.1")
        sh("ip", "netns", "exec", R, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "netns", "exec", S, "nft", "-f", "-", input=SERVER_RULES)
        sh("ip", "netns", "exec", R, "nft", "-f", "-", input=ROUTER_RULES)
        devnull = subprocess.DEVNULL
        subprocess.Popen(["ip", "netns", "exec", S, "/usr/bin/python3", "-c", LISTENER],
                         stdout=devnull, stderr=devnull)
        subprocess.Popen(["ip", "netns", "exec", S, "socat", "-T1", "UDP4-RECVFROM:5353,bind=%s,fork" % SERVER,
                          "PIPE"], stdout=devnull, stderr=devnull)
        for port in (80, 88, 3299, 8080):
            wait_listening(S, port)
        wait_listening(S, 5353, "udp")
        yield
    finally:
        teardown_namespaces()


RUNNER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, %r)
    from ansible_collections.netdiag.reachability.plugins.module_utils.probe import run as probe
    args = json.loads(sys.argv[1])
    print(json.dumps(probe.probe(args.pop("targets"), **args)))
""") % COLLECTIONS


def run_probe(targets, user=None, **options):
    """Run the library inside the client namespace with the target's Python."""
    argv = ["ip", "netns", "exec", C]
    if user:
        argv += ["setpriv", "--reuid=%s" % user, "--regid=nogroup", "--clear-groups"]
    options["targets"] = targets
    out = sh(*(argv + ["/usr/bin/python3", "-c", RUNNER, json.dumps(options)]), timeout=120)
    return json.loads(out.stdout)


def by_port(result):
    return dict(((r["port"], r["protocol"]), r) for r in result["results"])


TARGETS = [
    {"host": SERVER, "ports": ["79-89", 8080]},
    {"host": SERVER, "protocol": "udp", "ports": [53, 5353]},
]
# (port, protocol) -> (state, reason, sender)
EXPECTED = {
    (79, "tcp"): ("closed", "reset", SERVER),               # nothing listens
    (80, "tcp"): ("open", "syn-ack", SERVER),
    (81, "tcp"): ("filtered", "port-unreach", SERVER),      # like firewalld's iptables backend: 3/3
    (82, "tcp"): ("filtered", "host-prohibited", SERVER),   # 3/10
    (83, "tcp"): ("filtered", "admin-prohibited", SERVER),  # firewalld nftables backend: 3/13
    (84, "tcp"): ("filtered", "no-response", None),         # drop
    (85, "tcp"): ("closed", "reset", SERVER),               # reject with tcp reset
    (86, "tcp"): ("filtered", "admin-prohibited", ROUTER),  # the router rejects
    (87, "tcp"): ("filtered", "no-response", None),         # the router drops
    (88, "tcp"): ("open", "syn-ack", SERVER),
    (89, "tcp"): ("open", "syn-ack", SERVER),
    (8080, "tcp"): ("closed", "reset", SERVER),             # bound to 127.0.0.1 only
    (53, "udp"): ("closed", "port-unreach", SERVER),
    (5353, "udp"): ("open", "udp-response", SERVER),
}


def observed(result):
    return dict((k, (r["state"], r["reason"], r["reply"] and r["reply"]["sender"])) for k, r in by_port(result).items())


@pytest.mark.parametrize("engine,user", [("raw", None), ("connect", None), ("auto", "nobody")])
def test_every_state_and_reason(scratch, engine, user):
    time.sleep(1.5)     # let the server's ICMP token bucket refill between runs
    result = run_probe(TARGETS, user=user, engine=engine)
    assert result["engine"] == ("connect" if user else engine)
    assert observed(result) == EXPECTED
    res = by_port(result)
    assert not any(r["rate_limited"] for r in res.values())
    # the router's reject comes from one hop closer than the server's
    assert res[(86, "tcp")]["reply"]["ttl"] == 64 and res[(83, "tcp")]["reply"]["ttl"] == 63
    assert res[(86, "tcp")]["reply"]["sender_is_target"] is False
    assert res[(83, "tcp")]["reply"]["icmp_name"] == "destination-unreachable/admin-prohibited"
    if result["engine"] == "raw":
        assert res[(80, "tcp")]["reply"]["ttl"] == 63 and res[(79, "tcp")]["reply"]["ttl"] == 63
    else:   # stated limitation: connect() cannot see the TTL of a SYN-ACK or RST
        assert res[(80, "tcp")]["reply"]["ttl"] is None
    assert res[(84, "tcp")]["retries"] >= 1 and res[(80, "tcp")]["retries"] == 0
    assert all(r["engine"] == result["engine"] for r in res.values())


def test_icmp_echo(scratch):
    result = run_probe([{"host": SERVER, "protocol": "icmp"}, {"host": "10.200.201.99", "protocol": "icmp"}],
                       engine="raw", timeout=0.5)
    echo, gone = result["results"]
    assert (echo["state"], echo["reason"], echo["reply"]["ttl"]) == ("open", "echo-reply", 63)
    # nobody has 10.200.201.99: the router's ARP fails and it says host-unreachable (after ~3 s)
    # or nothing comes back in time; never "open"
    assert gone["state"] in ("unreachable", "filtered")


def test_connect_engine_icmp_without_ping_socket_is_a_clear_error(scratch):
    argv = ["ip", "netns", "exec", C, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
            "/usr/bin/python3", "-c", RUNNER, json.dumps({"targets": [{"host": SERVER, "protocol": "icmp"}]})]
    if sh("ip", "netns", "exec", C, "sysctl", "-n", "net.ipv4.ping_group_range").stdout.split() != ["1", "0"]:
        pytest.skip("ping sockets are allowed here")
    out = sh(*argv, check=False)
    assert out.returncode != 0 and "ping_group_range" in out.stderr


def test_app_check(scratch):
    result = run_probe([{"host": SERVER, "ports": [80, 88, 89]}], engine="raw", app_check="http", app_timeout=0.5)
    res = by_port(result)
    assert res[(80, "tcp")]["app"]["data"] == "HTTP/1.0 200 OK"
    assert res[(89, "tcp")]["app"]["answered"] is False and "no data" in res[(89, "tcp")]["app"]["error"]
    result = run_probe([{"host": SERVER, "ports": [88]}], engine="connect", app_check="banner")
    assert result["results"][0]["app"]["data"] == "SSH-2.0-ndxpr"


@pytest.mark.parametrize("engine,user", [("raw", None), ("connect", "nobody")])
def test_rate_limited_rejects_are_never_called_drops(scratch, engine, user):
    """150 rejecting + 150 dropping ports: the server's ICMP rate limit (burst 6, then 1/s)
    hides most rejects.  Every rejecting port is either seen rejecting or flagged."""
    time.sleep(6)       # full token bucket
    result = run_probe([{"host": SERVER, "ports": ["3000-3299"]}], user=user, engine=engine, rate_limit_budget=3)
    res = by_port(result)
    rejects = [res[(p, "tcp")] for p in range(3000, 3150)]
    drops = [res[(p, "tcp")] for p in range(3150, 3300)]
    for r in rejects:
        assert r["reason"] == "admin-prohibited" or r["rate_limited"] is True, r
    seen = sum(1 for r in rejects if r["reason"] == "admin-prohibited")
    assert 6 <= seen < 150      # the burst at least; the rate limit really did bite
    for r in drops:
        assert r["state"] == "filtered" and r["reason"] == "no-response", r
    assert result["summary"]["rate_limited"] == sum(1 for r in rejects + drops if r["rate_limited"])
    assert result["elapsed_s"] < 10


def test_module_through_ansible_as_root_and_nobody(scratch):
    """The module as a user runs it: exit JSON, changed=False, same states both ways."""
    args = json.dumps({"targets": [{"host": SERVER, "ports": [79, 80, 83, 86]}]})
    outs = {}
    for user in (None, "nobody"):
        home = tempfile.mkdtemp(prefix="ndx-pr-ansible-")
        try:
            os.chmod(home, 0o777)
            env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), HOME=home,
                       ANSIBLE_LOCAL_TEMP=os.path.join(home, "l"), ANSIBLE_REMOTE_TEMP=os.path.join(home, "r"))
            time.sleep(1.2)
            argv = ["ip", "netns", "exec", C]
            if user:
                argv += ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
            argv += [os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-c", "local", "--check",
                     "-e", "ansible_python_interpreter=/usr/bin/python3", "-m", "netdiag.reachability.probe",
                     "-a", args]
            out = sh(*argv, env=env, cwd=ROOT, check=False, timeout=120)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        text = out.stdout
        assert "SUCCESS" in text, out.stdout + out.stderr
        outs[user] = json.loads(text[text.index("{"):])
    assert outs[None]["engine"] == "raw" and outs["nobody"]["engine"] == "connect"
    for res in outs.values():
        assert res["changed"] is False
        assert [(r["port"], r["state"], r["reason"]) for r in res["results"]] == [
            (79, "closed", "reset"), (80, "open", "syn-ack"), (83, "filtered", "admin-prohibited"),
            (86, "filtered", "admin-prohibited")]


def test_module_rejects_bad_input_naming_it(scratch):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    argv = ["ip", "netns", "exec", C, os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-c", "local",
            "-e", "ansible_python_interpreter=/usr/bin/python3", "-m", "netdiag.reachability.probe", "-a"]
    out = sh(*(argv + [json.dumps({"targets": [{"host": SERVER, "ports": [70000]}]})]), env=env, check=False)
    assert out.returncode != 0 and "70000" in out.stdout
    out = sh(*(argv + [json.dumps({"targets": [{"host": SERVER, "ports": [80], "protocol": "gre"}]})]),
             env=env, check=False)
    assert out.returncode != 0 and "gre" in out.stdout


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
