# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""firewalld_port on the lab's real firewalld hosts (nftables and iptables backends).

Only ports 9000-9099 and the services https, ftp and imap are touched, and every test puts
back the runtime and permanent state of those items in zone public as it found them (also
on failure).  Other ports and services of the zone belong to other tests and are left alone.
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import state_hash

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = "netdiag.reachability.firewalld_port"
HOSTS = ["fwd-nft", "fwd-ipt"]
ZONE = "public"
OUR_SERVICES = ("https", "ftp", "imap")
EHOSTUNREACH = 113


def _ours_port(spec):
    rng = spec.split("/")[0]
    lo, dummy, hi = rng.partition("-")
    return 9000 <= int(lo) and int(hi or lo) <= 9099


def zone_items(lab, host, permanent):
    """(ports, services) of zone public as firewall-cmd in the host lists them."""
    perm = ["--permanent"] if permanent else []
    ports = lab.exec(host, ["firewall-cmd"] + perm + ["--zone", ZONE, "--list-ports"]).stdout.split()
    services = lab.exec(host, ["firewall-cmd"] + perm + ["--zone", ZONE, "--list-services"]).stdout.split()
    return sorted(ports), sorted(services)


def our_items(lab, host):
    """Our part of the zone (ports 9000-9099, our services), runtime and permanent."""
    out = {}
    for permanent in (False, True):
        ports, services = zone_items(lab, host, permanent)
        out["permanent" if permanent else "runtime"] = (
            sorted(p for p in ports if _ours_port(p)), sorted(s for s in services if s in OUR_SERVICES))
    return out


def _restore_host(lab, host, saved):
    now = our_items(lab, host)
    for side in ("runtime", "permanent"):
        perm = ["--permanent"] if side == "permanent" else []
        (ports_now, services_now), (ports_then, services_then) = now[side], saved[side]
        for p in ports_now:
            if p not in ports_then:
                lab.exec(host, ["firewall-cmd"] + perm + ["--zone", ZONE, "--remove-port", p])
        for p in ports_then:
            if p not in ports_now:
                lab.exec(host, ["firewall-cmd"] + perm + ["--zone", ZONE, "--add-port", p])
        for s in services_now:
            if s not in services_then:
                lab.exec(host, ["firewall-cmd"] + perm + ["--zone", ZONE, "--remove-service", s])
        for s in services_then:
            if s not in services_now:
                lab.exec(host, ["firewall-cmd"] + perm + ["--zone", ZONE, "--add-service", s])
    assert our_items(lab, host) == saved, "could not restore zone %s on %s" % (ZONE, host)


@pytest.fixture
def restore(lab):
    """Snapshot our items on both hosts; put them back afterwards, whatever happened."""
    saved = {host: our_items(lab, host) for host in HOSTS}
    yield saved
    errors = []
    for host in HOSTS:
        try:
            _restore_host(lab, host, saved[host])
        except Exception as exc:  # keep restoring the other host
            errors.append("%s: %s" % (host, exc))
    assert not errors, errors


def free_port(saved, host, candidates):
    """A port of ours that is closed on both sides of the host now."""
    used = set(saved[host]["runtime"][0]) | set(saved[host]["permanent"][0])
    for port in candidates:
        if "%d/tcp" % port not in used:
            return port
    pytest.fail("no free test port on %s" % host)


def run(lab, host, args, check=False):
    return lab.module(host, MODULE, args, check=check)


# --------------------------------------------------------------------------- four steps

@pytest.mark.parametrize("host", HOSTS)
def test_four_steps(lab, restore, host):
    port = free_port(restore, host, range(9000, 9040))
    args = {"ports": ["%d/tcp" % port, "9050-9052/udp"], "services": ["https"]}
    before = zone_items(lab, host, False), zone_items(lab, host, True)
    state = state_hash(lab, host)

    # 1. check: changed, with a diff naming what would be added; nothing changes
    res = run(lab, host, args, check=True)
    assert not res.get("failed"), res.get("msg")
    assert res["changed"] is True
    assert (res["zone"], res["zone_from"]) == (ZONE, "default")
    assert res["configs"] == ["runtime", "permanent"]
    for side in ("runtime", "permanent"):
        assert "%s zone public: port %d/tcp" % (side, port) in res["diff"]["after"].splitlines()
        assert "%s zone public: port %d/tcp" % (side, port) not in res["diff"]["before"].splitlines()
        assert "%s zone public: service https" % side in res["diff"]["after"].splitlines()
    predicted = res["settings"]["after"]
    assert state_hash(lab, host) == state, "check mode changed the firewall"
    assert (zone_items(lab, host, False), zone_items(lab, host, True)) == before

    # 2. real run: changes both sides, exactly as predicted
    res = run(lab, host, args)
    assert not res.get("failed"), res.get("msg")
    assert res["changed"] is True
    assert res["settings"]["after"] == predicted
    for permanent in (False, True):
        ports, services = zone_items(lab, host, permanent)
        assert "%d/tcp" % port in ports and "9050-9052/udp" in ports and "https" in services
        assert "8000/tcp" in ports and "ssh" in services, "other items of the zone must stay"
    state = state_hash(lab, host)

    # 3. check again: unchanged, and 4. real again: unchanged
    for check in (True, False):
        res = run(lab, host, args, check=check)
        assert not res.get("failed"), res.get("msg")
        assert res["changed"] is False and res["changes"] == []
        assert res["diff"]["before"] == res["diff"]["after"]
    assert state_hash(lab, host) == state

    # closing: the same four steps back
    args["state"] = "absent"
    res = run(lab, host, args, check=True)
    assert res["changed"] is True and state_hash(lab, host) == state
    assert run(lab, host, args)["changed"] is True
    assert (zone_items(lab, host, False), zone_items(lab, host, True)) == before
    assert run(lab, host, args, check=True)["changed"] is False
    assert run(lab, host, args)["changed"] is False


def test_diff_output_is_readable(lab, restore, tmp_path):
    port = free_port(restore, "fwd-nft", range(9040, 9050))
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{
        "hosts": "fwd-nft", "gather_facts": False,
        "tasks": [{"netdiag.reachability.firewalld_port": {"ports": ["%d/tcp" % port]}}]}]))
    proc = lab.playbook(str(play), check=True, diff=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "+runtime zone public: port %d/tcp" % port in proc.stdout
    assert "+permanent zone public: port %d/tcp" % port in proc.stdout
    assert " runtime zone public: port 8000/tcp" in proc.stdout, "context lines are shown"
    assert zone_items(lab, "fwd-nft", False)[0].count("%d/tcp" % port) == 0


def test_runtime_only_and_permanent_only(lab, restore):
    host = "fwd-ipt"
    port = free_port(restore, host, range(9060, 9070))
    spec = "%d/tcp" % port
    res = run(lab, host, {"ports": [spec], "permanent": False})
    assert res["changed"] and res["configs"] == ["runtime"]
    assert spec in zone_items(lab, host, False)[0] and spec not in zone_items(lab, host, True)[0]
    # now the default (both sides) only has the permanent side left to change
    res = run(lab, host, {"ports": [spec]})
    assert res["changed"] and [c["config"] for c in res["changes"]] == ["permanent"]
    res = run(lab, host, {"ports": [spec], "state": "absent", "runtime": False})
    assert res["changed"] and res["configs"] == ["permanent"]
    assert spec in zone_items(lab, host, False)[0] and spec not in zone_items(lab, host, True)[0]


def test_ranges_merge_and_split_like_firewalld(lab, restore):
    host = "fwd-nft"
    if any(restore[host][side][0] for side in ("runtime", "permanent")):
        pytest.fail("ports of ours are already open on %s: %s" % (host, restore[host]))
    res = run(lab, host, {"ports": ["9020-9029/tcp"]})
    assert res["changed"]
    res = run(lab, host, {"ports": ["9025/tcp"], "state": "absent"}, check=True)
    predicted = res["settings"]["after"]
    res = run(lab, host, {"ports": ["9025/tcp"], "state": "absent"})
    assert res["changed"] and res["settings"]["after"] == predicted and not res["notes"]
    for permanent in (False, True):
        ports = [p for p in zone_items(lab, host, permanent)[0] if _ours_port(p)]
        assert ports == ["9020-9024/tcp", "9026-9029/tcp"]
    # a port inside an open range is already open
    assert run(lab, host, {"ports": ["9021/tcp"]})["changed"] is False
    # closing a range that spans both pieces removes both (firewalld's removePort says NOT_ENABLED to it)
    res = run(lab, host, {"ports": ["9000-9099/tcp"], "state": "absent"})
    assert res["changed"] and not res["notes"]
    for permanent in (False, True):
        assert [p for p in zone_items(lab, host, permanent)[0] if _ours_port(p)] == []


def test_runtime_timeout_reverts(lab, restore):
    host = "fwd-nft"
    port = free_port(restore, host, range(9070, 9080))
    spec = "%d/tcp" % port
    res = run(lab, host, {"ports": [spec], "permanent": False, "timeout": 4})
    assert res["changed"] and spec in zone_items(lab, host, False)[0]
    deadline = time.monotonic() + 30
    while spec in zone_items(lab, host, False)[0]:
        assert time.monotonic() < deadline, "firewalld did not close %s after its timeout" % spec
        time.sleep(0.5)
    assert spec not in zone_items(lab, host, True)[0]


def test_zone_from_interface_says_why(lab, restore):
    res = run(lab, "fwd-nft", {"ports": ["9099/tcp"], "interface": "eth0"}, check=True)
    assert res["zone"] == ZONE and res["zone_from"] == "default"
    assert "eth0 is bound to no zone" in res["zone_reason"] and "default zone public" in res["zone_reason"]


# --------------------------------------------------------------------------- bad input

BAD = [
    ({"ports": ["0/tcp"]}, "0/tcp"),
    ({"ports": ["70000/tcp"]}, "70000/tcp"),
    ({"ports": ["abc/tcp"]}, "abc/tcp"),
    ({"ports": ["9000/icmp"]}, "icmp"),
    ({"ports": ["9010-9000/tcp"]}, "9010-9000/tcp"),
    ({"ports": ["9000-70000/udp"]}, "9000-70000/udp"),
    ({"ports": ["9000/tcp", "9001/bogus"]}, "bogus"),
    ({"ports": ["9000"], "zone": "nosuchzone"}, "nosuchzone"),
    ({"services": ["nosuchservice"]}, "nosuchservice"),
    ({"services": ["https", "nosuchservice2"], "ports": ["9001/tcp"]}, "nosuchservice2"),
    ({"ports": ["9000"], "source": "10.0.0.300"}, "10.0.0.300"),
    ({"ports": ["9000"], "timeout": 30}, "permanent: false"),
    ({"ports": ["9000"], "runtime": False, "permanent": False}, "both false"),
    ({"protocol": "udp"}, "nothing to do"),
]


def test_bad_input_clear_error_nothing_changed(lab, restore):
    host = "fwd-nft"
    state = state_hash(lab, host)
    items = our_items(lab, host)
    failures = []
    for args, needle in BAD:
        res = run(lab, host, args)
        if not res.get("failed") or needle not in res.get("msg", "") or res.get("changed"):
            failures.append((args, res.get("failed"), res.get("changed"), res.get("msg")))
    assert not failures, failures
    assert our_items(lab, host) == items
    assert state_hash(lab, host) == state


# --------------------------------------------------------------------------- the wire

CONNECT = """
import errno, socket, sys
s = socket.socket()
s.settimeout(5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except OSError as exc:
    print("errno", exc.errno)
"""


def connect_from_client(lab, address, port):
    return lab.exec("client", ["python3", "-c", CONNECT, address, str(port)]).stdout.strip()


@pytest.fixture
def listener_9000(lab):
    host = "fwd-nft"
    busy = lab.exec(host, ["ss", "-Htln", "sport = :9000"]).stdout.strip()
    if busy:
        pytest.fail("something already listens on 9000 on %s: %s" % (host, busy))
    pid = lab.exec(host, ["sh", "-c", "nohup python3 -m http.server 9000 >/dev/null 2>&1 & echo $!"]).stdout.strip()
    try:
        deadline = time.monotonic() + 20
        while not lab.exec(host, ["ss", "-Htln", "sport = :9000"]).stdout.strip():
            assert time.monotonic() < deadline, "http.server did not start on %s" % host
            time.sleep(0.2)
        yield int(pid)
    finally:
        lab.exec(host, ["kill", pid], check=False)


def test_wire_closed_then_open(lab, restore, listener_9000):
    host = "fwd-nft"
    if "9000/tcp" in restore[host]["runtime"][0]:
        pytest.fail("9000/tcp is already open on %s; cannot show it closed" % host)
    address = lab.hosts[host].address
    assert connect_from_client(lab, address, 9000) == "errno %d" % EHOSTUNREACH, \
        "a closed firewalld port (nftables backend) answers ICMP 3/13: EHOSTUNREACH"
    res = run(lab, host, {"ports": ["9000/tcp"]})
    assert res["changed"]
    assert connect_from_client(lab, address, 9000) == "connected"
    res = run(lab, host, {"ports": ["9000/tcp"], "state": "absent"})
    assert res["changed"]
    assert connect_from_client(lab, address, 9000) == "errno %d" % EHOSTUNREACH


# --------------------------------------------------------------------------- several hosts

def test_several_hosts_at_once_no_interference(lab, restore, tmp_path):
    ports = {"fwd-nft": free_port(restore, "fwd-nft", range(9080, 9085)),
             "fwd-ipt": free_port(restore, "fwd-ipt", range(9085, 9090))}
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{
        "hosts": "fwd-nft,fwd-ipt", "gather_facts": False,
        "tasks": [{"netdiag.reachability.firewalld_port": {
            "ports": ["{{ fp_ports[inventory_hostname] }}/tcp"], "services": ["imap"]}}]}]))
    proc = lab.playbook(str(play), extra_vars={"fp_ports": ports}, limit="fwd-nft,fwd-ipt")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"fwd-nft\s+: ok=1\s+changed=1", proc.stdout), proc.stdout
    assert re.search(r"fwd-ipt\s+: ok=1\s+changed=1", proc.stdout), proc.stdout
    for host, other in (("fwd-nft", "fwd-ipt"), ("fwd-ipt", "fwd-nft")):
        for permanent in (False, True):
            got, services = zone_items(lab, host, permanent)
            assert "%d/tcp" % ports[host] in got and "imap" in services
            assert "%d/tcp" % ports[other] not in got, "%s got %s's port" % (host, other)
    proc = lab.playbook(str(play), extra_vars={"fp_ports": ports}, limit="fwd-nft,fwd-ipt")
    assert re.search(r"fwd-nft\s+: ok=1\s+changed=0", proc.stdout), proc.stdout
    assert re.search(r"fwd-ipt\s+: ok=1\s+changed=0", proc.stdout), proc.stdout


# --------------------------------------------------------------------------- daemon stopped

SCRATCH = "ndx-fp-offline"


@pytest.fixture
def scratch_host(lab):
    """A namespace of our own whose /etc/firewalld is a copy of fwd-nft's, with no firewalld."""
    etc = os.path.join("/etc/netns", SCRATCH)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    if os.path.exists(etc) or SCRATCH in listed.split():
        pytest.fail("%s is left over from an earlier run: remove it (ip netns del %s; rm -r %s)"
                    % (SCRATCH, SCRATCH, etc))
    os.makedirs(etc)
    try:
        shutil.copytree(os.path.join("/etc/netns", lab.hosts["fwd-nft"].ns, "firewalld"),
                        os.path.join(etc, "firewalld"), symlinks=True)
        subprocess.run(["ip", "netns", "add", SCRATCH], check=True)
        yield os.path.join(etc, "firewalld")
    finally:
        subprocess.run(["ip", "netns", "del", SCRATCH], check=False)
        shutil.rmtree(etc, ignore_errors=True)


def run_offline(lab, args, check=False):
    """The module on localhost inside the scratch namespace, with no system bus there."""
    argv = ["ip", "netns", "exec", SCRATCH, lab.ansible_bin("ansible"), "localhost", "-c", "local",
            "-e", "ansible_python_interpreter=/usr/bin/python3", "-m", MODULE, "-a", json.dumps(args)]
    if check:
        argv.append("--check")
    env = lab.env()
    env.update(lab.json_env())
    env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/run/%s-no-bus" % SCRATCH
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    data = json.loads(proc.stdout)
    return data["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_open_ports_role_with_the_daemon_stopped_edits_permanent_offline(lab, scratch_host, tmp_path):
    """The remediation role on a host whose firewalld is stopped: no runtime to change or verify, so it
    edits the permanent configuration offline and says so; a second run changes nothing."""
    play = tmp_path / "play.yml"
    play.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: netdiag.reachability.open_ports\n")
    ev = {"open_ports_rules": [{"backend": "firewalld", "ports": ["9151/tcp"], "verify_from": "localhost"}],
          "open_ports_management_source": "10.200.255.1", "open_ports_management_port": 22}  # no ssh here to read
    argv = ["ip", "netns", "exec", SCRATCH, lab.ansible_bin("ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=/usr/bin/python3", "-e", json.dumps(ev), "-v", str(play)]
    env = lab.env()
    env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/run/%s-no-bus" % SCRATCH
    xml = os.path.join(scratch_host, "zones", "public.xml")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert re.search(r"localhost\s+: ok=\d+\s+changed=[1-9]\d*\s+unreachable=0\s+failed=0", proc.stdout), \
        proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "offline, firewalld not running" in proc.stdout, proc.stdout[-4000:]
    with open(xml) as fh:
        assert '<port port="9151" protocol="tcp"/>' in fh.read()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert re.search(r"localhost\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", proc.stdout), proc.stdout[-4000:]


def test_daemon_stopped_edits_permanent_offline(lab, scratch_host):
    lab_items = our_items(lab, "fwd-nft")
    xml = os.path.join(scratch_host, "zones", "public.xml")
    with open(xml) as fh:
        original = fh.read()
    args = {"ports": ["9000/tcp"], "services": ["ftp"]}

    res = run_offline(lab, args, check=True)
    assert not res.get("failed"), res.get("msg")
    assert res["changed"] and res["offline"] and res["configs"] == ["permanent"]
    assert res["config_file"] == "/etc/firewalld/zones/public.xml"
    assert any("not" in n and "offline" in n for n in res["notes"])
    with open(xml) as fh:
        assert fh.read() == original, "check mode wrote the zone file"

    res = run_offline(lab, args)
    assert res["changed"] and res["offline"]
    with open(xml) as fh:
        text = fh.read()
    assert '<port port="9000" protocol="tcp"/>' in text and '<service name="ftp"/>' in text
    assert '<port port="8000" protocol="tcp"/>' in text and '<service name="ssh"/>' in text

    assert run_offline(lab, args, check=True)["changed"] is False
    assert run_offline(lab, args)["changed"] is False

    res = run_offline(lab, {"ports": ["9000"], "permanent": False})
    assert res.get("failed") and "runtime" in res["msg"]
    # the lab's own fwd-nft (whose configuration was copied) was not touched
    assert our_items(lab, "fwd-nft") == lab_items
