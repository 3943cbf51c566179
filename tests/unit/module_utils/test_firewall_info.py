# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""firewall_info library, ufw and firewalld readers, on real captures (fixtures/firewall_info/README.md)."""
import copy
import os
import re

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils import firewall_info as fi
from ansible_collections.netdiag.reachability.plugins.module_utils import firewalld as fwd
from ansible_collections.netdiag.reachability.plugins.module_utils.errors import InputError, ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import firewalld_zones, iptables, ufw

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UFW = os.path.join(HERE, "fixtures", "firewall_info", "scratch-ufw")
FWD = os.path.join(HERE, "fixtures", "firewalld")
ADDR = "10.200.200.5"


def _read(*parts):
    with open(os.path.join(UFW, *parts)) as fh:
        return fh.read()


def _ufw_facts():
    readers = {
        "nftables": lambda: ({"model": 1, "tables": [], "warnings": []}, "test"),
        "iptables": lambda: iptables.read_iptables(run=_fake_run),
        "firewalld": lambda: None,
        "ufw": lambda: ufw.read_ufw(UFW),
        "addresses": lambda: [ADDR, "fd00::5"],
    }
    return fi.gather(readers=readers)


def _fake_run(argv):
    files = {"iptables-nft-save": "iptables-save", "ip6tables-nft-save": "ip6tables-save"}
    if argv[0] in files:
        return 0, _read(files[argv[0]]), ""
    return None  # the legacy variants are not installed


def _pkt(dport, proto="tcp", src="10.200.200.7", dst=ADDR, **kw):
    p = {"proto": proto, "src": src, "dst": dst, "sport": 40000, "dport": dport, "iif": "d0"}
    p.update(kw)
    return p


def test_ufw_rule_numbers_match_ufw_status_numbered():
    facts = ufw.read_ufw(UFW)
    numbered = {}
    for line in _read("ufw-status-numbered.txt").splitlines():
        m = re.match(r"^\[\s*(\d+)\] (.*?)\s+(ALLOW|DENY|REJECT|LIMIT) (IN|FWD)", line)
        if m:
            numbered[int(m.group(1))] = (m.group(2).strip(), m.group(3).lower())
    assert len(facts["rules"]) == len(numbered) == 15
    for rule in facts["rules"]:
        assert (rule["text"].split(" %s " % rule["action"].upper())[0].replace(" on d0", ""),
                rule["action"]) == (numbered[rule["number"]][0].replace(" on d0", ""), numbered[rule["number"]][1])
    assert facts["defaults"] == {"incoming": "deny", "outgoing": "allow", "routed": "deny"}
    assert facts["enabled"] is True and facts["logging"] == "medium"


@pytest.mark.parametrize("packet,verdict,by,number", [
    (_pkt(22), "accept", "rule", 1),
    (_pkt(5432), "accept", "rule", 2),
    (_pkt(5432, src="10.200.9.9"), "drop", "default", None),
    (_pkt(23), "drop", "rule", 3),
    (_pkt(8080), "reject", "rule", 4),
    (_pkt(9005, proto="udp"), "accept", "rule", 6),
    (_pkt(9005, proto="udp", iif="eth1"), "drop", "default", None),
    (_pkt(53, proto="udp"), "accept", "rule", 7),
    (_pkt(80, src="10.200.200.66"), "drop", "rule", 8),
    (_pkt(22, src="10.200.200.66"), "accept", "rule", 1),  # rule 1 comes before the deny of rule 8
    (_pkt(80, src="10.200.200.66", ct_state="established"), "accept", "builtin", None),
    (_pkt(8080, src="fd00::1", dst="fd00::5"), "reject", "rule", 12),
    (_pkt(80), "drop", "default", None),
])
def test_ufw_answer(packet, verdict, by, number):
    got = fi.evaluate_packets(_ufw_facts(), [packet])[0]
    assert got["verdict"] == verdict
    assert got["ufw"]["by"] == by and got["ufw"]["rule"] == number
    if by == "default":
        assert got["ufw"]["default_policy"] == "deny"


def test_ufw_limit_rule_is_indeterminate_with_the_reason():
    got = fi.evaluate_packets(_ufw_facts(), [_pkt(2222)])[0]
    assert got["verdict"] == "indeterminate" and "recent" in got["reason"]


def test_ufw_files_out_of_sync_with_the_kernel_are_flagged():
    facts = ufw.read_ufw(UFW)
    rs = iptables.read_iptables(run=_fake_run)
    rs = copy.deepcopy(rs)
    for table in rs["tables"]:
        for chain in table["chains"]:
            if chain["name"] == "ufw-user-input":
                del chain["rules"][0]
    ufw.link_origins(facts, rs)
    assert any("ufw-user-input holds 10 rules but the rules files list 11" in w for w in facts["warnings"])


def test_bad_ufw_files_raise_parse_errors_naming_the_value():
    with pytest.raises(ParseError, match="DEFAULT_INPUT_POLICY 'DORP'"):
        ufw.parse_settings("ENABLED=yes\n", _read("etc", "default", "ufw").replace('"DROP"', '"DORP"', 1))
    broken = _read("etc", "ufw", "user.rules").replace("### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in",
                                                       "### tuple ### allow tcp 22")
    with pytest.raises(ParseError, match="malformed ufw tuple"):
        ufw.parse_user_rules(broken, "ipv4")


def test_bad_packets_fail_before_anything_is_evaluated():
    facts = _ufw_facts()
    with pytest.raises(InputError, match=r"packets\[1\]: invalid dport 70000"):
        fi.evaluate_packets(facts, [_pkt(22), _pkt(70000)])
    with pytest.raises(InputError, match=r"packets\[0\]: unknown key dportt"):
        fi.evaluate_packets(facts, [{"proto": "tcp", "dportt": 22}])
    with pytest.raises(InputError, match="no ruleset"):
        fi.evaluate_packets(dict(facts, ruleset=None), [_pkt(22)])
    with pytest.raises(InputError, match="unknown layer 'pf'"):
        fi.gather(layers=["pf"])


def test_packet_path_defaults_from_local_addresses():
    facts = _ufw_facts()
    local, routed = fi.evaluate_packets(facts, [_pkt(80), _pkt(443, dst="10.200.200.9", oif="d0")])
    assert local["path"] == "input" and routed["path"] == "forward"
    assert routed["ufw"]["by"] == "rule" and routed["ufw"]["rule"] == 9


def test_firewalld_offline_zone_answer():
    def connect(config_root, system_root):
        return fwd.OfflineBackend(config_root, system_root), "firewalld is not running (test)"
    facts = firewalld_zones.read_firewalld(os.path.join(FWD, "fwd-nft", "etc", "firewalld"),
                                           os.path.join(FWD, "usr", "lib", "firewalld"), connect=connect)
    assert facts["running"] is False and facts["runtime"] is None and facts["default_zone"] == "public"
    public = facts["permanent"]["zones"]["public"]
    assert public["ports"] == ["8000/tcp"] and public["service_ports"]["ssh"] == ["22/tcp"]
    assert facts["permanent"]["zones"]["drop"]["target"] == "DROP"
    ssh = firewalld_zones.zone_answer(facts, {"proto": "tcp", "src": "10.200.1.10", "dport": 22, "iif": "eth0"})
    assert ssh["zone"] == "public" and ssh["zone_from"] == "default" and ssh["allowed_by"] == ["service ssh (22/tcp)"]
    web = firewalld_zones.zone_answer(facts, {"proto": "tcp", "src": "10.200.1.10", "dport": 80})
    assert web["verdict"] == "reject" and web["allowed"] is False and "not running" in web["reason"]
    # dhcpv6-client only applies to IPv6 packets to fe80::/64
    dhcp = firewalld_zones.zone_answer(facts, {"proto": "udp", "src": "10.200.1.10", "dst": "10.200.2.11", "dport": 546})
    assert dhcp["allowed"] is False


def test_firewalld_runtime_permanent_differences():
    zone = {"target": "default", "ports": ["8000/tcp"], "services": ["ssh"]}
    rt = {"default_zone": "public", "zones": {"public": dict(zone, ports=["8000/tcp", "9000/tcp"])}}
    pm = {"default_zone": "public", "zones": {"public": zone}}
    assert firewalld_zones.differences(rt, pm) == [
        {"zone": "public", "key": "ports", "runtime_only": ["9000/tcp"], "permanent_only": []}]


def test_local_addresses_reads_this_host():
    # the real `ip -j addr` of the machine running the tests: loopback is always there
    got = fi.local_addresses()
    assert "127.0.0.1" in got
