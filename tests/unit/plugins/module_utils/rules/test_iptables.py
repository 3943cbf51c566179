# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import iptables
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import model
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator, evaluate

from .helpers import ipt, nft, read, tcp


def test_header_gives_backend_and_family():
    assert ipt("lab-ipt-reject.iptables-save")["tables"][0]["backend"] == "iptables-nft"
    assert ipt("lab-ipt-legacy.iptables-legacy-save")["tables"][0]["backend"] == "iptables-legacy"
    v6 = ipt("lab-ufw.ip6tables-save")["tables"][0]
    assert v6["family"] == "ip6"
    assert [t["name"] for t in ipt("scratch-firewalld-ipt.iptables-save")["tables"]] == [
        "mangle", "security", "raw", "filter", "nat"]


def test_seed_ipt_reject_host_prohibited():
    result = evaluate(ipt("lab-ipt-reject.iptables-save"), tcp("10.200.2.15", 80))
    assert result["verdict"] == "reject" and result["reply"]["code"] == 10   # ICMP 3/10
    assert result["rule"] == {"backend": "iptables-nft", "family": "ip", "table": "filter", "chain": "INPUT",
                              "line": 6, "text": "-A INPUT -p tcp -m tcp --dport 80 -j REJECT "
                                                 "--reject-with icmp-host-prohibited"}
    assert evaluate(ipt("lab-ipt-reject.iptables-save"), tcp("10.200.2.15", 81))["verdict"] == "accept"


def test_seed_ipt_legacy_drop():
    result = evaluate(ipt("lab-ipt-legacy.iptables-legacy-save"), tcp("10.200.2.16", 3306))
    assert result["verdict"] == "drop" and result["reply"] is None
    assert result["rule"]["backend"] == "iptables-legacy"


@pytest.mark.parametrize("fixture", ["lab-fwd-ipt.iptables-save", "scratch-firewalld-ipt.iptables-save"])
def test_firewalld_iptables_backend(fixture):
    ev = Evaluator(ipt(fixture))
    assert ev.evaluate(tcp("10.200.2.12", 8000, iif="veth-fw"))["verdict"] == "accept"
    closed = ev.evaluate(tcp("10.200.2.12", 3306, iif="veth-fw"))
    # LAB-NOTES: the iptables backend rejects with 3/3, like a closed port
    assert closed["verdict"] == "reject" and closed["reply"]["code"] == 3
    assert closed["rule"]["chain"] == "IN_public"
    # --ctstate RELATED,ESTABLISHED,DNAT: a DNATed new connection is accepted too
    assert ev.evaluate(tcp("10.200.2.12", 3306, ct_status=["dnat"]))["verdict"] == "accept"


def test_firewalld_iptables_rich_rule():
    result = evaluate(ipt("scratch-firewalld-ipt.iptables-save"),
                      tcp("10.200.2.12", 8443, src="10.200.1.50", iif="veth-fw"))
    assert result["reply"]["code"] == 10 and result["rule"]["chain"] == "IN_public_deny"


@pytest.mark.parametrize("fixture", ["lab-ufw", "scratch-ufw"])
def test_ufw_default_deny_is_a_silent_policy_drop(fixture):
    ev = Evaluator(ipt(fixture + ".iptables-save"))
    assert ev.evaluate(tcp("10.200.2.17", 22))["verdict"] == "accept"
    denied = ev.evaluate(tcp("10.200.2.17", 80))
    assert denied["verdict"] == "drop" and denied["policy"] is True and denied["reply"] is None
    assert denied["chain"]["chain"] == "INPUT"
    v6 = Evaluator(ipt(fixture + ".ip6tables-save"))
    six = {"family": "ipv6", "proto": "tcp", "src": "fd00::5", "dst": "fd00::17", "dport": 22, "iif": "eth0"}
    assert v6.evaluate(six)["verdict"] == "accept"
    assert v6.evaluate(dict(six, dport=80))["verdict"] == "drop"


def test_ufw_user_rules():
    ev = Evaluator(ipt("scratch-ufw.iptables-save"))
    assert ev.evaluate(tcp("10.200.2.17", 5432, src="10.200.1.7"))["verdict"] == "accept"
    assert ev.evaluate(tcp("10.200.2.17", 5432, src="10.200.3.7"))["policy"] is True
    deny = ev.evaluate(tcp("10.200.2.17", 23))
    assert deny["verdict"] == "drop" and deny["rule"]["text"] == "-A ufw-user-input -p tcp -m tcp --dport 23 -j DROP"
    assert ev.evaluate(tcp("10.200.2.17", 8080))["reply"] == {"kind": "rst"}


def test_docker_style_chains():
    ev = Evaluator(ipt("docker.iptables-save"))
    assert ev.evaluate(tcp("10.1.1.1", 8005))["verdict"] == "accept"               # multiport range
    assert ev.evaluate(tcp("10.1.1.1", 3306))["rule"]["comment"] == "no db from outside"
    assert ev.evaluate(tcp("10.1.1.1", 5432, src="10.200.1.3"))["verdict"] == "accept"   # -m state NEW
    assert ev.evaluate(tcp("10.1.1.1", 5432, src="10.9.1.3"))["reply"] == {"kind": "rst"}
    assert ev.evaluate(tcp("10.1.1.1", 9100))["reply"]["code"] == 13
    recent = ev.evaluate(tcp("10.1.1.1", 11211))
    assert recent["verdict"] == "indeterminate" and "-m recent" in recent["reason"]
    # published port: DNAT to the container, then FORWARD -> DOCKER accepts it
    pub = ev.evaluate(tcp("10.1.1.1", 8080, oif="docker0"))
    assert pub["nat"]["dst"] == "172.17.0.2" and pub["nat"]["dport"] == 80
    assert pub["verdict"] == "accept" and pub["hooks"] == ["prerouting", "forward", "postrouting"]
    assert any(o["chain"] == "DOCKER" and o["table"] == "filter" for o in pub["trace"])
    blocked = ev.evaluate(tcp("10.1.1.1", 8080, src="10.66.0.9", oif="docker0"))
    assert blocked["verdict"] == "drop" and blocked["rule"]["chain"] == "DOCKER-USER"
    # not published: FORWARD policy DROP
    assert ev.evaluate(tcp("172.17.0.9", 80, oif="docker0"), path="forward")["policy"] is True


def test_mixed_legacy_and_nft_trap():
    runs = {
        "iptables-nft-save": (0, read("iptables", "docker.iptables-save"),
                              read("iptables", "docker.iptables-save.stderr")),
        "ip6tables-nft-save": (0, "", ""),
        "iptables-legacy-save": (0, read("iptables", "legacy.iptables-legacy-save"), ""),
        "ip6tables-legacy-save": None,
    }
    rs = iptables.read_iptables(run=lambda argv: runs[argv[0]])
    assert any("iptables-legacy tables present" in w for w in rs["warnings"])
    trap = [w for w in rs["warnings"] if "both active" in w]
    assert trap and "ip filter" in trap[0]
    # the kernel walks both: the legacy DROP on 3306 decides even though nft's table would accept
    result = evaluate(rs, tcp("10.1.1.1", 3306))
    assert result["verdict"] == "drop"
    assert {o["backend"] for o in [result["rule"]]} <= {"iptables-legacy", "iptables-nft"}
    assert evaluate(rs, tcp("10.1.1.1", 80, iif="lo"))["verdict"] == "accept"


def test_combine_prefers_iptables_save_over_xt_expressions():
    combined = model.combine(nft("lab-fwd-ipt"), [ipt("lab-fwd-ipt.iptables-save")])
    assert evaluate(combined, tcp("10.200.2.12", 8000, iif="veth-fw"))["verdict"] == "accept"
    assert evaluate(combined, tcp("10.200.2.12", 80, iif="veth-fw"))["reply"]["code"] == 3


# ----------------------------------------------------------------- malformed input

def test_truncated_dump_is_a_parse_error_naming_the_table():
    text = read("iptables", "lab-fwd-ipt.iptables-save")
    cut = text[: text.index("\n", text.index("*nat") + 200) + 1]  # whole lines, no COMMIT
    with pytest.raises(ParseError, match="table nat has no COMMIT"):
        iptables.parse_iptables_save(cut)


@pytest.mark.parametrize("text,message", [
    ("-A INPUT -j ACCEPT\n", "outside a table"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A OUTPUT -j ACCEPT\nCOMMIT\n", "not declared"),
    ("*filter\n:INPUT MAYBE [0:0]\nCOMMIT\n", "MAYBE"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport eighty -j ACCEPT\nCOMMIT\n", "eighty"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"open\nCOMMIT\n", "line 3"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-I INPUT -j ACCEPT\nCOMMIT\n", "-I INPUT"),
])
def test_bad_lines_are_parse_errors(text, message):
    with pytest.raises(ParseError, match=message):
        iptables.parse_iptables_save(text)


def test_unknown_match_and_target_are_indeterminate():
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:OTHER - [0:0]\n"
            "-A INPUT -p tcp -m tcp --dport 1 -m owner --uid-owner 0 -j DROP\n"
            "-A INPUT -p tcp -m tcp --dport 2 -j FANCYTARGET\n"
            "-A INPUT -p tcp -m tcp --dport 3 -j NFQUEUE --queue-num 1\n"
            "-A INPUT -p tcp -m tcp --dport 4 -j LOG --log-prefix x\n"
            "COMMIT\n")
    ev = Evaluator(iptables.parse_iptables_save(text))
    assert "-m owner" in ev.evaluate(tcp("10.0.0.1", 1))["reason"]
    assert "FANCYTARGET" in ev.evaluate(tcp("10.0.0.1", 2))["reason"]
    assert "user space" in ev.evaluate(tcp("10.0.0.1", 3))["reason"]
    assert ev.evaluate(tcp("10.0.0.1", 4))["verdict"] == "accept"   # LOG does not change the walk
    assert ev.evaluate(tcp("10.0.0.1", 5))["verdict"] == "accept"
