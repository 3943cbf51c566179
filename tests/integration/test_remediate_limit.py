"""The remediate playbook with --limit and with open_ports_rules (no report): three hosts each drop their own
port; a run limited to one of them changes exactly that one (the probe from the client opens there), lists the
other two as outside the limit and leaves them as they were; a limit that matches only hosts without a change
says so.  Every host is restored exactly."""
import re

from conftest import state_hash

PORT = 9290
BROKEN = ("healthy", "loopback", "dns")
TABLE = "ndtest_limit"


def _changed(proc, host):
    m = re.search(r"^%s\s+: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)" % re.escape(host), proc.stdout, re.M)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _open_from_client(lab, host):
    """The client's view: does a connection to PORT get through the host's firewall (a reset means it did)?"""
    script = ("import socket,sys\ns=socket.socket()\ns.settimeout(1.5)\n"
              "try:\n    s.connect((sys.argv[1], %d))\n    print('open')\n"
              "except ConnectionRefusedError:\n    print('refused')\n"
              "except OSError:\n    print('blocked')\n" % PORT)
    return lab.exec("client", ["python3", "-c", script, lab.hosts[host].address]).stdout.strip()


def test_limit_fixes_exactly_the_limited_host_from_rules_without_a_report(lab, restore):
    for host in BROKEN:
        restore(host, [["nft", "delete", "table", "inet", TABLE]])
        lab.exec(host, ["nft", "add table inet %s; add chain inet %s input { type filter hook input priority 10; }; "
                        "add rule inet %s input tcp dport %d drop" % (TABLE, TABLE, TABLE, PORT)])
    assert [_open_from_client(lab, h) for h in BROKEN] == ["blocked"] * 3
    rules = [{"host": h, "backend": "nftables", "ports": ["%d/tcp" % PORT], "verify_from": "client",
              "verify_address": lab.hosts[h].address} for h in BROKEN]
    ev = {"open_ports_rules": rules, "open_ports_allow_raw_rules": True}
    before = {h: state_hash(lab, h) for h in BROKEN}

    checked = lab.playbook("netdiag.reachability.remediate", extra_vars=ev, limit="loopback", check=True, diff=True)
    assert checked.returncode == 0, checked.stdout[-4000:]
    assert {h: state_hash(lab, h) for h in BROKEN} == before, "check mode changed a host"

    proc = lab.playbook("netdiag.reachability.remediate", extra_vars=ev, limit="loopback")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    changed, failed = _changed(proc, "loopback")
    assert changed >= 1 and failed == 0, proc.stdout[-4000:]
    assert _open_from_client(lab, "loopback") == "refused"      # through the firewall; nothing listens there
    assert [_open_from_client(lab, h) for h in ("healthy", "dns")] == ["blocked", "blocked"]
    assert {h: state_hash(lab, h) for h in ("healthy", "dns")} == {h: before[h] for h in ("healthy", "dns")}
    assert "healthy is outside --limit loopback" in proc.stdout and "dns is outside --limit loopback" in proc.stdout

    nothing = lab.playbook("netdiag.reachability.remediate", extra_vars=ev, limit="client")
    assert nothing.returncode == 0, nothing.stdout[-4000:]
    assert "nothing to change: --limit client leaves no host with a change from open_ports_rules" in nothing.stdout
    assert [_open_from_client(lab, h) for h in ("healthy", "dns")] == ["blocked", "blocked"]


def test_a_rule_without_host_needs_a_limit_or_open_ports_hosts(lab):
    before = state_hash(lab, "healthy")
    proc = lab.playbook("netdiag.reachability.remediate", extra_vars={
        "open_ports_rules": [{"backend": "nftables", "ports": ["%d/tcp" % PORT]}]})
    assert proc.returncode != 0
    assert "open_ports_rules[0] has no host" in proc.stdout, proc.stdout[-3000:]
    assert state_hash(lab, "healthy") == before
