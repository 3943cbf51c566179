# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""firewall_info library, ufw and firewalld readers, on real captures (fixtures/firewall_info/README.md)."""
import copy
import json
import os
import re
import shutil

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.gather import firewall as fi
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import client as fwc
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import zones as firewalld_zones
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import iptables
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import nftables
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import ufw

from ...helpers import ROOT

FIXTURES_PARENT = os.path.join(ROOT, "tests", "unit")

HERE = FIXTURES_PARENT
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
        return fwc.OfflineReader(config_root, system_root), "firewalld is not running (test)"
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


# ----------------------------------------------------------------- one garbled layer

NFT = os.path.join(HERE, "fixtures", "rules", "nft")


def _nft_capture():
    """nftables of the lab seed host (`tcp dport 80 drop` in inet filter input), as `nft -j` printed it."""
    with open(os.path.join(NFT, "lab-nft-drop.json")) as fh:
        return fh.read()


def _nft_reader(text):
    return lambda: (nftables.parse_nft_json(text, source="nft -j list ruleset"), "nft -j list ruleset")


def _garbled_run(program, garble):
    """_fake_run, with the output of ``program`` passed through ``garble``."""
    def run(argv):
        got = _fake_run(argv)
        if got is not None and argv[0] == program:
            return got[0], garble(got[1]), got[2]
        return got
    return run


def _facts(nft_text=None, run=_fake_run, ufw_root=UFW):
    return fi.gather(readers={
        "nftables": _nft_reader(_nft_capture() if nft_text is None else nft_text),
        "iptables": lambda: iptables.read_iptables(run=run),
        "firewalld": lambda: None,
        "ufw": lambda: ufw.read_ufw(ufw_root),
        "addresses": lambda: [ADDR, "fd00::5"],
    })


def _truncated(text):
    return text[: len(text) // 2]


def _cut_after_half_the_lines(text):
    lines = text.splitlines(True)
    return "".join(lines[: len(lines) // 2])


def test_all_layers_readable_gives_plain_verdicts():
    facts = _facts()
    assert not any(layer["unreadable"] for layer in facts["layers"].values())
    ssh, web = fi.evaluate_packets(facts, [_pkt(22), _pkt(80)])
    assert ssh["verdict"] == "accept" and ssh["readable_layers"] is None and ssh["ufw"]["rule"] == 1
    assert web["verdict"] == "drop" and web["rule"]["table"] == "filter" and web["rule"]["backend"] == "nftables"


def test_garbled_iptables_output_leaves_the_other_layers_and_makes_verdicts_indeterminate():
    facts = _facts(run=_garbled_run("ip6tables-nft-save", _cut_after_half_the_lines))
    layers = facts["layers"]
    assert layers["iptables"]["present"] is True and layers["iptables"]["unreadable"] is True
    assert layers["iptables"]["error"].startswith("iptables: ") and "ip6tables-nft-save" in layers["iptables"]["error"]
    assert "no COMMIT" in layers["iptables"]["error"]
    assert layers["iptables"]["error"] in facts["firewall_warnings"]
    # nftables and ufw were still read
    assert layers["nftables"] == dict(layers["nftables"], present=True, active=True, unreadable=False, error=None,
                                      tables=["inet filter"])
    assert layers["ufw"]["present"] is True and layers["ufw"]["unreadable"] is False and facts["ufw"]["rules"]
    assert [t["backend"] for t in facts["ruleset"]["tables"]] == ["nftables"]
    ssh, web = fi.evaluate_packets(facts, [_pkt(22), _pkt(80)])
    for got, alone in ((ssh, "accept"), (web, "drop")):
        assert got["verdict"] == "indeterminate", got
        assert "iptables layer could not be read" in got["reason"] and "no COMMIT" in got["reason"]
        assert got["readable_layers"]["verdict"] == alone
        assert got["rule"] is None and got["deciding_rule"] is None and got["reply"] is None
    assert web["readable_layers"]["rule"]["text"] == 'tcp dport 80 drop comment "seed: an nftables drop"'


def test_garbled_nftables_json_leaves_the_other_layers_and_makes_verdicts_indeterminate():
    data = json.loads(_nft_capture())
    rule = next(o["rule"] for o in data["nftables"] if "rule" in o)
    rule["expr"] = 5  # a structurally wrong listing: "expr" must be a list
    facts = _facts(nft_text=json.dumps(data))
    layers = facts["layers"]
    assert layers["nftables"]["present"] is True and layers["nftables"]["unreadable"] is True
    assert layers["nftables"]["active"] is None
    error = layers["nftables"]["error"]
    assert error.startswith("nftables: ") and '"expr" is an int (5), expected a list' in error
    assert 'rule 1 of chain "input"' in error and error in facts["firewall_warnings"]
    assert layers["iptables"]["active"] is True and layers["iptables"]["unreadable"] is False
    assert layers["ufw"]["active"] is True
    ssh = fi.evaluate_packets(facts, [_pkt(22)])[0]
    assert ssh["verdict"] == "indeterminate"
    assert "nftables layer could not be read" in ssh["reason"] and '"expr" is an int' in ssh["reason"]
    assert ssh["readable_layers"]["verdict"] == "accept"
    assert ssh["readable_layers"]["deciding_rule"]["chain"] == "ufw-user-input"
    assert ssh["ufw"]["text"].startswith("cannot tell")
    # the same on the saved result (what the firewall_verdict filter gets)
    saved = json.loads(json.dumps(facts))
    assert fi.evaluate_packets(saved, [_pkt(22)])[0]["reason"] == ssh["reason"]


def test_truncated_nftables_json_is_an_unreadable_layer_too():
    facts = _facts(nft_text=_truncated(_nft_capture()))
    assert facts["layers"]["nftables"]["unreadable"] is True and "not JSON" in facts["layers"]["nftables"]["error"]
    got = fi.result(packets=[_pkt(22)], include_rules=False,
                    readers={"nftables": _nft_reader(_truncated(_nft_capture())),
                             "iptables": lambda: iptables.read_iptables(run=_fake_run),
                             "firewalld": lambda: None, "ufw": lambda: ufw.read_ufw(UFW),
                             "addresses": lambda: [ADDR]})
    assert got["ruleset"] is None and got["verdicts"][0]["verdict"] == "indeterminate"
    assert "not JSON" in got["verdicts"][0]["reason"]


def test_garbled_ufw_files_lose_only_the_ufw_answer(tmp_path):
    root = tmp_path / "ufw-root"
    shutil.copytree(UFW, str(root))
    rules = root / "etc" / "ufw" / "user.rules"
    rules.write_text(rules.read_text().replace("### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in",
                                               "### tuple ### allow tcp 22"))
    facts = _facts(ufw_root=str(root))
    layer = facts["layers"]["ufw"]
    assert layer["present"] is True and layer["unreadable"] is True
    assert layer["error"].startswith("ufw: ") and "malformed ufw tuple" in layer["error"]
    assert layer["error"] in facts["firewall_warnings"] and facts["ufw"] is None
    assert facts["layers"]["iptables"]["active"] is True and facts["layers"]["nftables"]["active"] is True
    # ufw's rules are loaded in iptables, which was read: the kernel's verdict is still known
    ssh = fi.evaluate_packets(facts, [_pkt(22)])[0]
    assert ssh["verdict"] == "accept" and ssh["readable_layers"] is None
    assert ssh["deciding_rule"]["chain"] == "ufw-user-input"
    assert ssh["ufw"] == {"error": layer["error"]}


def test_garbled_firewalld_zone_file_loses_only_the_firewalld_answer(tmp_path):
    etc = tmp_path / "firewalld"
    shutil.copytree(os.path.join(FWD, "fwd-nft", "etc", "firewalld"), str(etc))
    zone = etc / "zones" / "public.xml"
    zone.write_text(zone.read_text()[:100])  # cut short: not XML any more

    def connect(config_root, system_root):
        return fwc.OfflineReader(config_root, system_root), "firewalld is not running (test)"
    facts = fi.gather(readers={
        "nftables": _nft_reader(_nft_capture()),
        "iptables": lambda: iptables.read_iptables(run=_fake_run),
        "firewalld": lambda: firewalld_zones.read_firewalld(str(etc), os.path.join(FWD, "usr", "lib", "firewalld"),
                                                            connect=connect),
        "ufw": lambda: None,
        "addresses": lambda: [ADDR],
    })
    layer = facts["layers"]["firewalld"]
    assert layer["unreadable"] is True and layer["error"].startswith("firewalld: ") and "public" in layer["error"]
    assert facts["firewalld"] is None and layer["error"] in facts["firewall_warnings"]
    got = fi.evaluate_packets(facts, [_pkt(22)])[0]
    # firewalld's rules live in the nftables/iptables layers, which were read
    assert got["verdict"] == "accept" and got["readable_layers"] is None
    assert got["firewalld"] == {"error": layer["error"]}
