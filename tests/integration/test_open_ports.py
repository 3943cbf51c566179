"""The open_ports role on the lab: the four steps per backend, check mode changes nothing, a change that
would cut ssh is refused, bad input changes nothing.  Every test changes its host only inside a fixture
that restores the exact previous state, and uses ports 9100-9199."""
import hashlib
import re
import textwrap

import pytest

PORT = 9100
# firewalld rewrites a zone file on every permanent change: compare the zones' content (C14N sorts attributes)
_ZONES_C14N = ("python3 -c 'import glob, xml.etree.ElementTree as E; "
               "[print(f, E.canonicalize(from_file=f, strip_text=True)) for f in sorted(glob.glob(\"/etc/firewalld/zones/*.xml\"))]'")


def _state(lab, host):
    text = lab.exec(host, ["sh", "-c", "nft list ruleset; iptables-save 2>/dev/null | grep -v '^#'; "
                           "iptables-legacy-save 2>/dev/null | grep -v '^#'; " + _ZONES_C14N + "; "
                           "cat /etc/ufw/user.rules /etc/ufw/user6.rules 2>/dev/null"]).stdout
    text = re.sub(r"\[\d+:\d+\]|counter packets \d+ bytes \d+", "", text)
    return hashlib.sha256(text.encode()).hexdigest()


def _changed(proc, host):
    m = re.search(r"^%s\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)" % re.escape(host), proc.stdout, re.M)
    assert m, proc.stdout[-3000:] + proc.stderr[-2000:]
    return int(m.group(1)), int(m.group(3))


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


@pytest.fixture
def listener(lab):
    started = []

    def start(host, port=PORT):
        pid = lab.exec(host, ["sh", "-c", "nohup python3 -m http.server %d >/dev/null 2>&1 & echo $!" % port]).stdout.strip()
        started.append((host, pid))
        for _ in range(50):
            if ":%d " % port in lab.exec(host, ["sh", "-c", "ss -ltn"]).stdout:
                return
            lab.exec(host, ["sleep", "0.1"])
    yield start
    for host, pid in started:
        lab.exec(host, ["kill", pid], check=False)


@pytest.fixture
def restore(lab):
    """Register (host, undo argv list); on teardown run the undo commands and check the host is as before."""
    saved = []

    def register(host, undo):
        saved.append((host, undo, _state(lab, host)))
    yield register
    errors = []
    for host, undo, before in saved:
        for argv in undo:
            lab.exec(host, argv, check=False)
        if _state(lab, host) != before:
            errors.append(host)
    assert not errors, "state not restored on %s" % errors


def _four_steps(lab, play, host, rules, diff_line, applied):
    ev = {"target": host, "open_ports_rules": rules, "open_ports_allow_raw_rules": True}
    before = _state(lab, host)
    proc = lab.playbook(play, extra_vars=ev, check=True, diff=True)
    assert _changed(proc, host)[0] > 0 and _changed(proc, host)[1] == 0
    assert diff_line in proc.stdout, proc.stdout[-4000:]
    assert _state(lab, host) == before, "check mode changed %s" % host
    proc = lab.playbook(play, extra_vars=ev)
    assert _changed(proc, host)[0] > 0 and _changed(proc, host)[1] == 0, proc.stdout[-4000:]
    assert applied()
    proc = lab.playbook(play, extra_vars=ev, check=True, diff=True)
    assert _changed(proc, host) == (0, 0), proc.stdout[-4000:]
    proc = lab.playbook(play, extra_vars=ev)
    assert _changed(proc, host) == (0, 0), proc.stdout[-4000:]


@pytest.mark.parametrize("host", ["fwd-nft", "fwd-ipt"])
def test_firewalld_four_steps_runtime_and_permanent_verified_from_the_client(lab, play, listener, restore, host):
    spec = "%d/tcp" % PORT
    restore(host, [["firewall-cmd", "--zone=public", "--remove-port=" + spec],
                   ["firewall-cmd", "--permanent", "--zone=public", "--remove-port=" + spec]])
    listener(host)

    def applied():
        rt = lab.exec(host, ["firewall-cmd", "--zone=public", "--list-ports"]).stdout.split()
        pm = lab.exec(host, ["firewall-cmd", "--permanent", "--zone=public", "--list-ports"]).stdout.split()
        probe = lab.module("client", "netdiag.reachability.probe", {"targets": [{"host": lab.hosts[host].address, "ports": [spec]}]})
        return spec in rt and spec in pm and probe["results"][0]["state"] == "open"
    rules = [{"backend": "firewalld", "ports": [spec], "verify_from": "client"}]
    _four_steps(lab, play, host, rules, "+permanent zone public: port %s" % spec, applied)


def test_ufw_four_steps_from_one_source(lab, play, listener, restore):
    host, src = "ufw", lab.hosts["client"].address
    restore(host, [["ufw", "--force", "delete", "allow", "proto", "tcp", "from", src, "to", "any", "port", str(PORT)]])
    listener(host)

    def applied():
        return "%d/tcp" % PORT in lab.exec(host, ["ufw", "status"]).stdout
    rules = [{"backend": "ufw", "ports": ["%d/tcp" % PORT], "source": src, "verify_from": "client"}]
    _four_steps(lab, play, host, rules, "+ufw rule: %d/tcp ALLOW IN %s" % (PORT, src), applied)


def test_raw_nftables_four_steps_insert_before_the_drop(lab, play, listener, restore):
    host, port = "nft-drop", PORT + 1
    saved = lab.exec(host, ["nft", "list", "ruleset"]).stdout
    lab.exec(host, ["sh", "-c", "cat > /tmp/netdiag-open-ports.nft"], input=saved)
    restore(host, [["sh", "-c", "nft flush ruleset && nft -f /tmp/netdiag-open-ports.nft && rm -f /tmp/netdiag-open-ports.nft"]])
    lab.exec(host, ["nft", "add", "rule", "inet", "filter", "input", "tcp", "dport", str(port), "drop"])
    listener(host, port)

    def applied():
        text = lab.exec(host, ["nft", "list", "chain", "inet", "filter", "input"]).stdout
        return text.index("dport %d accept" % port) < text.index("dport %d drop" % port)
    rules = [{"backend": "nftables", "ports": ["%d/tcp" % port], "verify_from": "client"}]
    _four_steps(lab, play, host, rules, "+nftables inet filter input: tcp dport %d accept" % port, applied)


def test_raw_rules_are_only_listed_unless_allowed(lab, play):
    before = _state(lab, "ipt-reject")
    proc = lab.playbook(play, extra_vars={"target": "ipt-reject", "open_ports_rules": [
        {"backend": "iptables-nft", "ports": ["80/tcp"]}]})
    assert _changed(proc, "ipt-reject") == (0, 0), proc.stdout[-3000:]
    assert _state(lab, "ipt-reject") == before


def test_a_change_that_would_cut_ssh_is_refused_and_nothing_changes(lab, play):
    before = _state(lab, "ufw")
    proc = lab.playbook(play, extra_vars={"target": "ufw", "open_ports_rules": [
        {"backend": "ufw", "ports": ["22/tcp"], "state": "absent"}]})
    assert _changed(proc, "ufw")[1] == 1
    assert "refusing to change ufw: it would no longer accept new ssh connections from %s" % lab.controller_address in proc.stdout
    assert _state(lab, "ufw") == before


@pytest.mark.parametrize("rules,message", [
    ([{"backend": "ufw", "ports": ["70000/tcp"]}], "70000"),
    ([{"backend": "firewalld", "ports": "80/tcp"}], "ports must be a list"),
    ([{"backend": "pf", "ports": ["80/tcp"]}], "invalid backend 'pf'"),
    ([{"backend": "ufw", "ports": ["80/tcp"], "source": "10.0.0.999"}], "invalid source '10.0.0.999'"),
    ([{"backend": "firewalld", "ports": ["80/tcp"], "verify_from": "nobody"}], "verify_from 'nobody'"),
    ([{"backend": "nftables", "ports": ["80/tcp"], "state": "absent"}], "state absent is not supported"),
])
def test_bad_input_fails_naming_the_value_and_changes_nothing(lab, play, rules, message):
    before = _state(lab, "fwd-nft")
    proc = lab.playbook(play, extra_vars={"target": "fwd-nft", "open_ports_rules": rules})
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr, proc.stdout[-3000:]
    assert _state(lab, "fwd-nft") == before


def test_remediate_refuses_a_missing_report(lab):
    proc = lab.playbook("netdiag.reachability.remediate", extra_vars={"open_ports_from_report": "/nonexistent/report.json"})
    assert proc.returncode != 0 and "no such file" in proc.stdout
