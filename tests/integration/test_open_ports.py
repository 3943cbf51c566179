"""The open_ports role on the lab: the four steps per backend, check mode changes nothing, a change that
would cut ssh is refused, bad input changes nothing.  Every test changes its host only inside a fixture
that restores the exact previous state, and uses ports 9100-9199."""
import re
import textwrap

import pytest

from conftest import state_hash as _state

PORT = 9100


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
        for _attempt in range(50):
            if ":%d " % port in lab.exec(host, ["sh", "-c", "ss -ltn"]).stdout:
                return
            lab.exec(host, ["sleep", "0.1"])
    yield start
    for host, pid in started:
        lab.exec(host, ["kill", pid], check=False)


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


def test_ufw_revert_after_a_failed_verification_removes_only_what_this_run_added(lab, play, listener, restore):
    """9102 was allowed before the run, 9103 is new; an nftables drop outside ufw keeps 9103 blocked, so the
    verification from the client fails: the run reverts 9103 and keeps the user's own 9102 allow."""
    host, src = "ufw", lab.hosts["client"].address
    old, new = PORT + 2, PORT + 3
    undo = [["ufw", "--force", "delete", "allow", "proto", "tcp", "from", src, "to", "any", "port", str(p)] for p in (old, new)]
    restore(host, undo + [["nft", "delete", "table", "inet", "ndx_block"]])
    lab.exec(host, ["ufw", "allow", "proto", "tcp", "from", src, "to", "any", "port", str(old)])
    lab.exec(host, ["sh", "-c", "nft add table inet ndx_block && nft add chain inet ndx_block input "
                                "'{ type filter hook input priority -10; }' && nft add rule inet ndx_block input "
                                "tcp dport %d drop" % new])
    listener(host, old)
    listener(host, new)
    rules = [{"backend": "ufw", "ports": ["%d/tcp" % old, "%d/tcp" % new], "source": src, "verify_from": "client"}]
    proc = lab.playbook(play, extra_vars={"target": host, "open_ports_rules": rules})
    assert _changed(proc, host)[1] == 1, proc.stdout[-4000:]
    assert "still cannot reach %d" % new in proc.stdout and "the change was reverted" in proc.stdout, proc.stdout[-4000:]
    status = lab.exec(host, ["ufw", "status"]).stdout
    assert "%d/tcp" % old in status, status         # the user's allow is still there
    assert "%d/tcp" % new not in status, status     # ours is gone


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


def test_raw_revert_after_a_failed_verification_removes_the_inserted_rule(lab, play, listener, restore):
    """A drop on the router keeps the port blocked after the insert on the host: the verification from the
    client fails and the inserted accept rule is deleted again; the host's ruleset is as it was."""
    host, port = "nft-drop", PORT + 4
    saved = lab.exec(host, ["nft", "list", "ruleset"]).stdout
    lab.exec(host, ["sh", "-c", "cat > /tmp/netdiag-open-ports.nft"], input=saved)
    restore(host, [["sh", "-c", "nft flush ruleset && nft -f /tmp/netdiag-open-ports.nft && rm -f /tmp/netdiag-open-ports.nft"]])
    lab.exec(host, ["nft", "add", "rule", "inet", "filter", "input", "tcp", "dport", str(port), "drop"])
    restore("router", [["nft", "delete", "table", "inet", "ndx_block"]])
    lab.exec("router", ["sh", "-c", "nft add table inet ndx_block && nft add chain inet ndx_block forward "
                                    "'{ type filter hook forward priority 10; }' && nft add rule inet ndx_block forward "
                                    "tcp dport %d drop" % port])
    before = lab.exec(host, ["nft", "list", "table", "inet", "filter"]).stdout
    listener(host, port)
    rules = [{"backend": "nftables", "ports": ["%d/tcp" % port], "verify_from": "client"}]
    proc = lab.playbook(play, extra_vars={"target": host, "open_ports_rules": rules, "open_ports_allow_raw_rules": True})
    assert _changed(proc, host)[1] == 1, proc.stdout[-4000:]
    assert "the rules were removed again" in proc.stdout, proc.stdout[-4000:]
    assert lab.exec(host, ["nft", "list", "table", "inet", "filter"]).stdout == before


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


TEN = ["client", "healthy", "fwd-nft", "fwd-ipt", "loopback", "dns", "ipt-reject", "ipt-legacy", "ufw", "nft-drop"]


def test_ten_hosts_at_once_each_gets_its_own_port_and_nothing_else(lab, play, restore):
    """One run of the role on every lab host, each with its own backend and port: all change, none
    gets another host's port, and a second run changes nothing anywhere."""
    rules, ports, shows = [], {}, {}
    for i, host in enumerate(TEN):
        port = 9170 + i
        spec = "%d/tcp" % port
        ports[host] = port
        if host in ("fwd-nft", "fwd-ipt"):
            restore(host, [["firewall-cmd", "--zone=public", "--remove-port=" + spec],
                           ["firewall-cmd", "--permanent", "--zone=public", "--remove-port=" + spec]])
            rules.append({"host": host, "backend": "firewalld", "ports": [spec]})
            shows[host] = "firewall-cmd --zone=public --list-ports; firewall-cmd --permanent --zone=public --list-ports"
        elif host == "ufw":
            restore(host, [["ufw", "--force", "delete", "allow", "proto", "tcp", "from", "any", "to", "any", "port", str(port)]])
            rules.append({"host": host, "backend": "ufw", "ports": [spec]})
            shows[host] = "ufw status"
        elif host in ("ipt-reject", "ipt-legacy"):
            cmd = "iptables-nft" if host == "ipt-reject" else "iptables-legacy"
            saved = lab.exec(host, [cmd + "-save"]).stdout
            dump = "/tmp/netdiag-ten-%s.rules" % host   # /tmp is shared by every lab host
            lab.exec(host, ["sh", "-c", "cat > " + dump], input=saved)
            restore(host, [["sh", "-c", "%s-restore < %s && rm -f %s" % (cmd, dump, dump)]])
            lab.exec(host, [cmd, "-I", "INPUT", "1", "-p", "tcp", "--dport", str(port), "-j", "DROP"])
            rules.append({"host": host, "backend": cmd, "ports": [spec]})
            shows[host] = "%s -S INPUT" % cmd
        else:
            restore(host, [["nft", "delete", "table", "inet", "ndtest_ten"]])
            lab.exec(host, ["nft", "add table inet ndtest_ten; add chain inet ndtest_ten input "
                            "{ type filter hook input priority 10; }; add rule inet ndtest_ten input tcp dport %d drop" % port])
            rules.append({"host": host, "backend": "nftables", "ports": [spec]})
            shows[host] = "nft list ruleset"
    ev = {"target": ",".join(TEN), "open_ports_rules": rules, "open_ports_allow_raw_rules": True,
          "open_ports_verify": False}
    proc = lab.playbook(play, extra_vars=ev)
    assert proc.returncode == 0, proc.stdout[-4000:]
    for host in TEN:
        changed, failed = _changed(proc, host)
        assert changed >= 1 and failed == 0, host
        text = lab.exec(host, ["sh", "-c", shows[host]]).stdout
        assert str(ports[host]) in text, (host, text)
        others = [p for h, p in ports.items() if h != host and str(p) in text]
        assert not others, "%s got the ports of other hosts: %s" % (host, others)
    again = lab.playbook(play, extra_vars=ev)
    assert again.returncode == 0, again.stdout[-4000:]
    assert [h for h in TEN if _changed(again, h) != (0, 0)] == []
