"""Commit-confirm on the lab (open_ports with open_ports_confirm_timeout): the management connection is cut right
after the change; the run says the host did not answer and when its revert timer undoes the change, and the host
undoes it by itself within the timeout. Without a cut, the change is confirmed and stays, and no timer is left."""
import glob
import json
import re
import subprocess
import textwrap
import time

import pytest

from conftest import state_hash

PORT = 9197
TIMEOUT = 25
CUT = ["sh", "-c", "nft add table inet netdiag_test_cut && nft add chain inet netdiag_test_cut input "
       "'{ type filter hook input priority -300; }' && nft add rule inet netdiag_test_cut input tcp dport 22 drop"]
UNCUT = ["nft", "delete", "table", "inet", "netdiag_test_cut"]


_IN_RULESET = ("iptables-save 2>/dev/null | grep -q 'dport %d ' || nft list ruleset 2>/dev/null | grep -q 'dport %d '"
               % (PORT, PORT))


def _opened(lab, host):
    spec = "%d/tcp" % PORT
    if host == "ufw":
        return spec in lab.exec(host, ["ufw", "status"]).stdout
    return spec in lab.exec(host, ["firewall-cmd", "--zone=public", "--list-ports"]).stdout.split()


def _undo(lab, host):
    src = lab.hosts["client"].address
    if host == "ufw":
        return [["ufw", "--force", "delete", "allow", "proto", "tcp", "from", src, "to", "any", "port", str(PORT)]]
    spec = "%d/tcp" % PORT
    return [["firewall-cmd", "--zone=public", "--remove-port=" + spec],
            ["firewall-cmd", "--permanent", "--zone=public", "--remove-port=" + spec]]


def _rules(lab, host):
    if host == "ufw":
        return [{"backend": "ufw", "ports": ["%d/tcp" % PORT], "source": lab.hosts["client"].address,
                 "verify_from": "client"}]
    return [{"backend": "firewalld", "ports": ["%d/tcp" % PORT], "verify_from": "client"}]


@pytest.fixture
def play(tmp_path):
    path = tmp_path / "play.yml"
    path.write_text(textwrap.dedent("""\
        - hosts: "{{ target }}"
          gather_facts: false
          roles:
            - role: netdiag.reachability.open_ports
        """))
    return str(path)


def _timers():
    return glob.glob("/run/netdiag-reachability/revert-*")


@pytest.mark.parametrize("host", ["ufw", "fwd-nft"])
def test_a_cut_connection_is_undone_by_the_host_itself(lab, play, restore, host):
    before = state_hash(lab, host)
    restore(host, [UNCUT] + _undo(lab, host))
    ev = {"target": host, "open_ports_rules": _rules(lab, host), "open_ports_confirm_timeout": TIMEOUT,
          "open_ports_connection_timeout": 6, "open_ports_verify": False}
    argv = [lab.ansible_bin("ansible-playbook"), "-i", lab.inventory, play, "-e", json.dumps(ev)]
    assert lab.exec(host, ["sh", "-c", _IN_RULESET], check=False).returncode != 0, "port %d open before" % PORT
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=lab.env())
    try:
        # the host itself cuts its management connection the moment the change is in its ruleset (polled every
        # 50 ms inside the host): the cut lands somewhere between the change and its confirmation, and the run
        # must say so wherever it lands, while the host undoes the change by itself
        lab.exec(host, ["sh", "-c", "until { %s; }; do sleep 0.05; done; %s" % (_IN_RULESET, CUT[2])], timeout=150)
        opened_at = time.time()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    print("OUTCOME", re.findall(r"did not answer over ssh[^.]*", out))
    assert proc.returncode != 0
    assert re.search(r"did not answer over ssh (within 6 s )?after the change", out), out[-3000:] + err[-2000:]
    assert "revert timer" in out and "undoes the change by itself at" in out, out[-3000:]
    # nobody reaches the host any more: it undoes the change by itself, within the timeout
    while _opened(lab, host):
        assert time.time() - opened_at < TIMEOUT + 10, "the host did not undo the change"
        time.sleep(0.5)
    assert time.time() - opened_at >= TIMEOUT - 3, "undone before its time"
    lab.exec(host, UNCUT)
    assert state_hash(lab, host) == before
    # asked afterwards, the timer says what it did
    timer = re.search(r"its revert timer (\S+) undoes", out, re.I).group(1)
    said = lab.module(host, "netdiag.reachability.revert_timer", {"state": "confirmed", "id": timer})
    assert said["reverted"] and not said["confirmed"] and said["status"] == "reverted", said
    assert said["reason"] == "not confirmed within the timeout" and said["result"]["changed"]
    assert not _timers(), _timers()
    if host == "fwd-nft":
        permanent = lab.exec(host, ["firewall-cmd", "--permanent", "--zone=public", "--list-ports"]).stdout.split()
        assert "%d/tcp" % PORT not in permanent, "made permanent without a confirmation"


def test_a_confirmed_change_stays_and_leaves_no_timer(lab, play, restore):
    host = "ufw"
    restore(host, _undo(lab, host))
    ev = {"target": host, "open_ports_rules": _rules(lab, host), "open_ports_confirm_timeout": 12, "open_ports_verify": False}
    proc = lab.playbook(play, extra_vars=ev)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "Arm the revert timer" in proc.stdout and "Confirm the change (stop the revert timer)" in proc.stdout
    time.sleep(14)
    assert _opened(lab, host), "a confirmed change was undone"
    assert not _timers(), _timers()
