# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""listeners_info on the seeds lab: what it reports over ssh equals what ``ss`` sees in the host."""

import json
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.netdiag.reachability.plugins.plugin_utils.listener_match import match_listener  # noqa: E402

MODULE = "netdiag.reachability.listeners_info"
HOSTS = ["client", "healthy", "fwd-nft", "fwd-ipt", "loopback", "dns", "ipt-reject", "ipt-legacy", "ufw",
         "nft-drop"]


def ss_sockets(lab, host):
    """``ss -Htulpn`` in the host -> set of (protocol, address, port, pid)."""
    out = set()
    for line in lab.exec(host, ["ss", "-Htulpn"]).stdout.splitlines():
        fields = line.split()
        addr, dummy, port = fields[4].rpartition(":")
        addr = addr.strip("[]")
        if addr == "*":  # dual-stack IPv6 wildcard
            addr = "::"
        addr = addr.split("%")[0]  # 'addr%dev' when bound to a device
        for pid in re.findall(r"pid=(\d+)", line):
            out.add((fields[0], addr, int(port), int(pid)))
    return out


def ours(result):
    return set((l["protocol"], l["address"], l["port"], pid) for l in result["listeners"] for pid in l["pids"])


def gather(lab, host, args=None, check=False):
    # always pass an argument: `ansible -a '{}'` is taken as raw params by ansible 2.19
    args = dict(args or {}, include_process=True)
    result = lab.module(host, MODULE, args, check=check)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    return result


@pytest.mark.parametrize("host", HOSTS)
def test_same_sockets_and_pids_as_ss(lab, host):
    # ss before and after the module run must agree, else a service was still starting: retry
    for dummy in range(5):
        before = ss_sockets(lab, host)
        result = gather(lab, host)
        after = ss_sockets(lab, host)
        if before == after:
            break
    assert before == after, "the host's sockets kept changing"
    assert ours(result) == before
    # every listener got its process: the module runs as root
    assert result["process_scan"]["complete"] is True
    assert all(l["pids"] for l in result["listeners"])


def _spec_listeners(lab, host):
    return lab.hosts[host].spec.get("listeners") or []


@pytest.mark.parametrize("host", [h for h in HOSTS if h != "client"])
def test_topology_listeners_are_reported(lab, host):
    result = gather(lab, host)
    for spec in _spec_listeners(lab, host):
        bind = spec.get("bind", "0.0.0.0")
        found = [l for l in result["listeners"]
                 if (l["protocol"], l["port"], l["address"]) == (spec["proto"], spec["port"], bind)]
        assert len(found) == 1, (spec, result["listeners"])
        (l,) = found
        assert l["scope"] == ("loopback" if bind.startswith("127.") else "any")
        assert l["process"] and l["user"] == "root"
        if spec["proto"] == "tcp":
            assert l["accept_backlog"] is not None and l["accept_queue"] is not None


def test_loopback_only_service(lab):
    host = lab.hosts["loopback"]
    result = gather(lab, "loopback", {"ports": [8080]}, check=True)
    (l,) = result["listeners"]
    assert (l["address"], l["port"], l["scope"]) == ("127.0.0.1", 8080, "loopback")
    verdict = match_listener(result["listeners"], host.address, 8080, "tcp")
    assert (verdict["accepted"], verdict["cause"]) == (False, "loopback_only")
    assert match_listener(result["listeners"], "127.0.0.1", 8080, "tcp")["accepted"] is True


def test_stopped_dns_service(lab):
    host = lab.hosts["dns"]
    result = gather(lab, "dns", {"ports": [53, 5353]})
    assert [(l["protocol"], l["port"]) for l in result["listeners"]] == [("udp", 5353)]
    assert match_listener(result["listeners"], host.address, 53, "udp")["cause"] == "no_listener"
    assert match_listener(result["listeners"], host.address, 5353, "udp")["cause"] == "ok"


def test_sshd_answers_on_its_own_address(lab):
    host = lab.hosts["healthy"]
    result = gather(lab, "healthy", {"ports": ["22/tcp"]})
    verdict = match_listener(result["listeners"], host.address, 22, "tcp")
    assert verdict["accepted"] is True
    assert verdict["listener"]["process"] == "sshd"


def test_sysctls_and_counters_are_the_hosts_own(lab):
    result = gather(lab, "healthy")
    somaxconn = int(lab.exec("healthy", ["cat", "/proc/sys/net/core/somaxconn"]).stdout)
    assert result["sysctls"]["net.core.somaxconn"] == somaxconn
    ifaces = lab.exec("healthy", ["ls", "/proc/sys/net/ipv4/conf"]).stdout.split()
    assert sorted(k for k in result["sysctls"] if k.endswith(".rp_filter")) == \
        sorted("net.ipv4.conf.%s.rp_filter" % i for i in ifaces)
    assert result["sysctls"]["net.ipv4.ip_forward"] == 0
    assert "TcpExtListenOverflows" in result["counters"]


def _sockets(result):
    return sorted((l["protocol"], l["address"], l["port"], l["inode"]) for l in result["listeners"])


def test_unprivileged_reader_lists_every_socket(lab):
    """As nobody inside the host: same sockets, but root's processes are not visible."""
    code = ("import json; from ansible_collections.netdiag.reachability.plugins.module_utils.gather import "
            "listeners; print(json.dumps(listeners.read_listeners()))")
    proc = lab.exec("loopback", ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 "env", "PYTHONPATH=" + os.path.join(ROOT, ".collections"),
                                 "/usr/bin/python3", "-c", code])
    unpriv = json.loads(proc.stdout)
    root = gather(lab, "loopback")
    assert _sockets(unpriv) == _sockets(root)
    assert unpriv["process_scan"]["complete"] is False
    assert all(l["pids"] == [] for l in unpriv["listeners"])
    assert any("could not read the open files" in w for w in unpriv["warnings"])
