"""The lab itself: every host is a real, separate machine as far as Ansible and the wire can tell."""
import json
import re

import pytest


def test_every_host_answers_setup_over_ssh_with_its_own_hostname(lab):
    # one ad-hoc run over the whole inventory, as a user would do it
    import subprocess
    env = lab.env()
    env.update(lab.json_env())
    proc = subprocess.run([lab.ansible_bin("ansible"), "all", "-i", lab.inventory, "-m", "ansible.builtin.setup",
                           "-a", "filter=ansible_hostname,ansible_default_ipv4"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]
    assert set(results) == set(lab.hosts)
    for name, res in results.items():
        facts = res["ansible_facts"]
        assert facts["ansible_hostname"] == name
        if name != "router":
            assert facts["ansible_default_ipv4"]["address"] == lab.hosts[name].address


def test_each_host_has_its_own_nftables_ruleset(lab):
    rulesets = {name: lab.exec(name, ["nft", "list", "ruleset"]).stdout for name in lab.hosts}
    assert 'tcp dport 80 drop comment "seed: an nftables drop"' in rulesets["nft-drop"]
    assert "tcp dport 8082 reject with icmp admin-prohibited" in rulesets["router"]
    assert "dnat to 10.200.2.10:80" in rulesets["router"]
    assert rulesets["healthy"].strip() == ""
    assert rulesets["client"].strip() == ""
    # firewalld (nftables backend) made its own table, only on its own host
    assert "table inet firewalld" in rulesets["fwd-nft"]
    assert "table inet firewalld" not in rulesets["nft-drop"]
    # iptables-nft rules live in nft tables of that host only
    assert "reject-with icmp-host-prohibited" in lab.exec("ipt-reject", ["iptables-save"]).stdout
    assert "reject-with icmp-host-prohibited" not in lab.exec("healthy", ["iptables-save"]).stdout
    # the legacy host's rule is in the legacy tables, not in nftables
    assert "--dport 3306 -j DROP" in lab.exec("ipt-legacy", ["iptables-legacy-save"]).stdout
    assert "3306" not in rulesets["ipt-legacy"]


def test_firewalld_hosts_answer_firewall_cmd_over_ssh_without_environment(lab):
    for name in ("fwd-nft", "fwd-ipt"):
        res = lab.module(name, "ansible.builtin.command", {"argv": ["firewall-cmd", "--state"]})
        assert res.get("rc") == 0, res
        assert res["stdout"] == "running"
        zone = lab.module(name, "ansible.builtin.command", {"argv": ["firewall-cmd", "--zone=public", "--list-ports"]})
        assert zone["stdout"].split() == ["8000/tcp"]
    backend = lab.exec("fwd-ipt", ["sh", "-c", "grep ^FirewallBackend /etc/firewalld/firewalld.conf"]).stdout
    assert backend.strip() == "FirewallBackend=iptables"


def test_ufw_host_has_its_own_ufw(lab):
    out = lab.module("ufw", "ansible.builtin.command", {"argv": ["ufw", "status", "verbose"]})["stdout"]
    assert "Status: active" in out
    assert "deny (incoming)" in out
    assert re.search(r"^22/tcp\s+ALLOW IN\s+Anywhere", out, re.M)
    other = lab.exec("healthy", ["ufw", "status"], check=False).stdout
    assert "Status: inactive" in other


def _nmap(lab, target, ports, udp=False):
    argv = ["nmap", "-n", "-Pn", "--reason", "--max-retries", "1", "-oX", "-", "-p", ports, target]
    argv.insert(1, "-sU" if udp else "-sS")
    xml = lab.exec("client", argv, timeout=120).stdout
    found = {}
    for m in re.finditer(r'<port protocol="(\w+)" portid="(\d+)"><state state="([^"]+)" reason="([^"]+)"'
                         r'(?: reason_ttl="\d+")?(?: reason_ip="([^"]+)")?', xml):
        found[int(m.group(2))] = (m.group(3), m.group(4), m.group(5) or target)
    return found


@pytest.mark.parametrize("target,port,udp,state,reason,sender", [
    ("10.200.2.10", 80, False, "open", "syn-ack", None),                     # healthy
    ("10.200.2.11", 8000, False, "open", "syn-ack", None),                   # firewalld allows 8000 (seed 002)
    ("10.200.2.11", 80, False, "filtered", "admin-prohibited", None),        # firewalld nft backend: 3/13
    ("10.200.2.12", 80, False, "filtered", "port-unreach", None),            # firewalld iptables backend: 3/3
    ("10.200.2.13", 8080, False, "closed", "reset", None),                   # bound to 127.0.0.1 only
    ("10.200.2.14", 53, True, "closed", "port-unreach", None),               # stopped DNS
    ("10.200.2.14", 5353, True, "open", "udp-response", None),
    ("10.200.2.15", 80, False, "filtered", "host-prohibited", None),         # iptables 3/10 (seed 002)
    ("10.200.2.16", 3306, False, "filtered", "no-response", None),           # iptables-legacy drop
    ("10.200.2.17", 80, False, "filtered", "no-response", None),             # ufw default deny
    ("10.200.2.18", 80, False, "filtered", "no-response", None),             # nftables drop
    ("10.200.2.10", 8081, False, "filtered", "no-response", None),           # router drops
    ("10.200.2.10", 8082, False, "filtered", "admin-prohibited", "10.200.1.1"),  # router rejects itself
    ("10.200.1.1", 8080, False, "open", "syn-ack", None),                    # DNAT to healthy:80
    ("10.200.1.1", 8088, False, "closed", "reset", None),                    # DNAT to healthy:81 (nothing there)
])
def test_the_wire_shows_each_seed_scenario(lab, target, port, udp, state, reason, sender):
    got = _nmap(lab, target, str(port), udp=udp)[port]
    assert got[0] == state and got[1] == reason, got
    assert got[2] == (sender or target)


def test_the_lab_reaches_only_its_own_addresses(lab):
    routes = lab.exec("client", ["ip", "-j", "route"]).stdout
    for r in json.loads(routes):
        if r.get("gateway"):
            assert r["gateway"].startswith("10.200."), r
