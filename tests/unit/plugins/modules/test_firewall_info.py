# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""firewall_info run as Ansible runs it (module file + ANSIBLE_MODULE_ARGS on stdin).

The module reads the firewall of the network namespace it runs in, so it runs in a private one
(never the host's): the captured ufw host (tests/unit/fixtures/firewall_info/scratch-ufw) is
rebuilt there - its iptables-save output loaded into the namespace, tmp copies of its ufw files
bind-mounted over /etc/ufw and /etc/default in a private mount namespace.
"""

import hashlib
import os
import shlex
import shutil

import pytest

from .. import helpers

pytestmark = pytest.mark.skipif(not helpers.private_namespaces_work(),
                                reason="needs network and mount namespaces (root)")


@pytest.fixture
def ufw_host(tmp_path):
    """The run_module prefix of the captured ufw host, and a digest of its files to check they stay."""
    src = helpers.fixture("firewall_info", "scratch-ufw")
    root = tmp_path / "scratch-ufw"
    shutil.copytree(src, root)
    setup = "iptables-restore < %s; ip6tables-restore < %s" % (
        shlex.quote(str(root / "iptables-save")), shlex.quote(str(root / "ip6tables-save")))
    prefix = helpers.private_namespaces([(root / "etc" / "ufw", "/etc/ufw"), (root / "etc" / "default", "/etc/default")],
                                        setup=setup)
    return prefix, root


def digest(root):
    out = hashlib.sha256()
    for top, dummy, files in sorted(os.walk(root)):
        for name in sorted(files):
            with open(os.path.join(top, name), "rb") as fh:
                out.update(name.encode() + fh.read())
    return out.hexdigest()


def packet(src, dport):
    return {"proto": "tcp", "src": src, "dst": "10.200.200.5", "dport": dport, "iif": "d0", "path": "input"}


@pytest.mark.parametrize("check_mode", [False, True])
def test_verdicts_and_ufw_answers_on_the_captured_host(ufw_host, check_mode):
    prefix, root = ufw_host
    before = digest(root)
    result = helpers.run_module("firewall_info", {
        "layers": ["iptables", "ufw"], "include_rules": False,
        "packets": [packet("10.200.200.7", 5432), packet("10.9.9.9", 5432), packet("10.9.9.9", 8080),
                    packet("10.9.9.9", 22)]}, check_mode=check_mode, prefix=prefix)
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is False
    assert result["layers"]["ufw"]["present"] is True and result["layers"]["ufw"]["active"] is True
    assert result["layers"]["iptables"]["variants"] == ["iptables-nft"]
    assert "nftables" not in result["layers"] and result["firewalld"] is None
    assert result["ruleset"] is None  # include_rules: false
    assert result["ufw"]["defaults"] == {"incoming": "deny", "outgoing": "allow", "routed": "deny"}
    got = [(v["verdict"], v["ufw"]["by"], v["ufw"]["rule_text"]) for v in result["verdicts"]]
    assert got == [("accept", "rule", "5432/tcp ALLOW IN 10.200.200.0/24"),
                   ("drop", "default", None),
                   ("reject", "rule", "8080/tcp REJECT IN Anywhere"),
                   ("accept", "rule", "22/tcp ALLOW IN Anywhere")]
    assert result["verdicts"][2]["reply"] == {"kind": "rst"}
    assert result["verdicts"][0]["packet"]["dport"] == 5432
    assert digest(root) == before  # read-only


def test_whole_rule_model_is_returned_by_default(ufw_host):
    prefix, dummy = ufw_host
    result = helpers.run_module("firewall_info", {"layers": ["iptables"]}, prefix=prefix)
    assert "failed" not in result, result.get("msg")
    assert result["verdicts"] == []
    chains = {(t["family"], t["name"], c["name"]): c for t in result["ruleset"]["tables"] for c in t["chains"]}
    assert chains[("ip", "filter", "INPUT")]["policy"] == "drop"
    assert ("ip", "filter", "ufw-user-input") in chains


@pytest.mark.parametrize("bad,needle", [
    ({"proto": "tcp", "src": "10.0.0.999", "dport": 80}, "10.0.0.999"),
    ({"proto": "tcp", "src": "10.0.0.1", "dport": 70000}, "70000"),
    ({"proto": "frobnicate", "src": "10.0.0.1", "dport": 80}, "frobnicate"),
])
def test_a_bad_packet_fails_naming_it(ufw_host, bad, needle):
    prefix, dummy = ufw_host
    result = helpers.run_module("firewall_info", {"layers": ["ufw"], "packets": [bad]}, prefix=prefix)
    assert result["failed"] is True
    assert needle in result["msg"]
    assert "verdicts" not in result and not result.get("changed")


@pytest.mark.parametrize("args,needle", [
    ({"layers": ["pf"]}, "pf"),
    ({"packets": [{"src": "10.0.0.1"}]}, "proto"),
    ({"packets": [{"proto": "tcp", "ct_state": "bogus"}]}, "bogus"),
    ({"include_rules": "perhaps"}, "perhaps"),
])
def test_bad_arguments_fail_naming_the_value(ufw_host, args, needle):
    prefix, dummy = ufw_host
    result = helpers.run_module("firewall_info", args, prefix=prefix)
    assert result["failed"] is True and needle in result["msg"]
    assert not result.get("changed")
