# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""raw_rule run as Ansible runs it (module file + ANSIBLE_MODULE_ARGS on stdin).

Never against the host's firewall: every run that may read or change a ruleset is in a private
network namespace, where the test first loads a small nftables ruleset (22/tcp accepted,
8080-8081/tcp dropped).  Each run gets a new namespace, so every test starts from that ruleset;
what a real change did is seen in RV(diff.after), which the module re-reads after the change.
Where namespaces cannot be made (not root), only the bad inputs run, in check mode.
"""

import os
import shlex

import pytest

from .. import helpers

NS = helpers.private_namespaces_work()
needs_ns = pytest.mark.skipif(not NS, reason="needs network and mount namespaces (root)")
NO_SSH = {k: v for k, v in os.environ.items() if k != "SSH_CONNECTION"}
COMMENT = 'comment "netdiag.reachability open_ports"'

RULES = """
table inet filter {
  chain input {
    type filter hook input priority 0; policy accept;
    ct state established,related accept
    tcp dport 22 accept
    %s
    tcp dport { 8080, 8081 } drop
  }
}
"""


@pytest.fixture
def ruleset(tmp_path):
    """``ruleset(extra="")`` -> a run_module prefix: a private network namespace with RULES loaded."""
    def make(extra="", path_dir=None):
        rules = tmp_path / "rules.nft"
        rules.write_text(RULES % extra)
        setup = "nft -f %s" % shlex.quote(str(rules))
        if path_dir:
            setup += "; PATH=%s:$PATH; export PATH" % shlex.quote(str(path_dir))
        return helpers.private_namespaces(setup=setup)
    return make


def run(args, check_mode=False, prefix=None, env=None):
    return helpers.run_module("raw_rule", args, check_mode=check_mode, env=env or NO_SSH, prefix=prefix)


@needs_ns
def test_check_mode_plans_the_insert_before_the_drop(ruleset):
    result = run({"backend": "nftables", "ports": ["8080/tcp"]}, check_mode=True, prefix=ruleset())
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is True
    assert result["msg"] == "would insert 1 nftables rule for 8080/tcp"
    assert result["commands"] == ["nft insert rule inet filter input position 5 tcp dport 8080 accept " + COMMENT]
    assert result["rules"] == [{"port": "8080/tcp", "backend": "nftables", "family": "inet", "table": "filter",
                                "chain": "input", "rule": "tcp dport 8080 accept " + COMMENT}]
    after = result["diff"]["after"].splitlines()
    assert after.index("nftables inet filter input: tcp dport 8080 accept " + COMMENT) == \
        after.index("nftables inet filter input: tcp dport { 8080, 8081 } drop") - 1
    assert COMMENT not in result["diff"]["before"]
    assert result["guard"] == ["no management connection known (no SSH_CONNECTION): not checked"]
    assert any("running ruleset only" in note for note in result["notes"])


@needs_ns
def test_the_rule_is_inserted_and_guarded(ruleset):
    result = run({"backend": "nftables", "ports": ["8080/tcp"], "source": "10.0.2.0/24",
                  "management": {"source": "10.9.9.9"}}, prefix=ruleset())
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is True and result["msg"] == "inserted 1 nftables rule for 8080/tcp"
    rule = "ip saddr 10.0.2.0/24 tcp dport 8080 accept " + COMMENT
    assert result["commands"] == ["nft insert rule inet filter input position 5 " + rule]
    # diff.after is the ruleset read back after the change
    assert "nftables inet filter input: %s\n" % rule in result["diff"]["after"]
    assert result["guard"] == ["new ssh connections from 10.9.9.9 to port 22/tcp: accept before, accept after"]
    assert not any("still blocked" in note for note in result["notes"])


@needs_ns
def test_an_accepted_port_changes_nothing(ruleset):
    result = run({"backend": "nftables", "ports": ["22/tcp", "9090/tcp"]}, prefix=ruleset())
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is False and result["commands"] == [] and result["rules"] == []
    assert result["msg"] == "the ruleset already accepts 22/tcp, 9090/tcp"


@needs_ns
def test_absent_removes_only_the_rules_it_added(ruleset):
    prefix = ruleset(extra="tcp dport 8080 accept " + COMMENT)
    result = run({"backend": "nftables", "ports": ["8080/tcp"], "state": "absent"}, prefix=prefix)
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is True and len(result["commands"]) == 1
    assert result["commands"][0].startswith("nft delete rule inet filter input handle ")
    assert COMMENT in result["diff"]["before"] and COMMENT not in result["diff"]["after"]
    assert "tcp dport { 8080, 8081 } drop" in result["diff"]["after"]
    again = run({"backend": "nftables", "ports": ["8081/tcp"], "state": "absent"}, prefix=prefix)
    assert again["changed"] is False and again["msg"] == "no nftables rule of this collection for 8081/tcp"


@needs_ns
def test_a_change_that_cuts_the_management_connection_is_refused(ruleset):
    # ssh on 2222 is let in only by a rule this module added: removing it would cut the connection
    prefix = ruleset(extra="tcp dport 2222 accept %s\n    tcp dport 2222 drop" % COMMENT)
    result = run({"backend": "nftables", "ports": ["2222/tcp"], "state": "absent",
                  "management": {"source": "10.9.9.9", "port": 2222}}, prefix=prefix)
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("refusing the change: the ruleset would no longer accept new ssh connections "
                                    "from 10.9.9.9 to port 2222/tcp (after: dropped by nftables rule 'tcp dport 2222 drop'")
    assert "error" not in result and "commands" not in result


@needs_ns
def test_the_wrong_backend_is_named(ruleset):
    result = run({"backend": "iptables-nft", "ports": ["8080/tcp"]}, prefix=ruleset())
    assert result["failed"] is True and result["changed"] is False
    assert result["error"] == "RawRuleError" and result["commands"] == []
    assert "blocked by a nftables rule (inet filter input: tcp dport { 8080, 8081 } drop), not by iptables-nft: " \
           "use backend nftables" in result["msg"]


@needs_ns
def test_a_partial_change_says_what_was_done(ruleset, tmp_path):
    """The second insert fails (an nft that refuses ports 8081): the task fails, changed, with the first command."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    real = "/usr/sbin/nft" if os.path.exists("/usr/sbin/nft") else "nft"
    fake = bindir / "nft"
    fake.write_text('#!/bin/sh\ncase "$*" in *"dport 8081"*) echo "Error: no 8081 today" >&2; exit 1;; esac\n'
                    'exec %s "$@"\n' % real)
    fake.chmod(0o755)
    result = run({"backend": "nftables", "ports": ["8080/tcp", "8081/tcp"]}, prefix=ruleset(path_dir=bindir))
    assert result["failed"] is True
    assert result["changed"] is True
    assert result["error"] == "RawRuleError"
    assert result["commands"] == ["nft insert rule inet filter input position 5 tcp dport 8080 accept " + COMMENT]
    assert "dport 8081" in result["msg"] and "failed (rc=1): Error: no 8081 today" in result["msg"]


@pytest.mark.parametrize("args,needle", [
    ({"ports": [0]}, "invalid port '0': must be between 1 and 65535"),
    ({"ports": [65536]}, "invalid port '65536': must be between 1 and 65535"),
    ({"ports": ["70000/tcp"]}, "invalid port '70000': must be between 1 and 65535"),
    ({"ports": ["9000-8000/tcp"]}, "invalid port range '9000-8000': 9000 is greater than 8000"),
    ({"ports": ["80/icmp"]}, "unknown protocol 'icmp'"),
    ({"ports": ["8\u00b2"]}, "invalid port '8\u00b2': not a number"),
    ({"ports": ["\uff18\uff10/tcp"]}, "invalid port '\uff18\uff10': not a number"),
    ({"ports": ["80-8\u00b2/tcp"]}, "invalid port '8\u00b2': not a number"),
    ({"ports": [80], "state": "maybe"}, "value of state must be one of: present, absent, got: maybe"),
    ({"ports": [80], "backend": "pf"}, "value of backend must be one of: nftables, iptables-nft, iptables-legacy, got: pf"),
    ({"ports": "eighty"}, "invalid port 'eighty': not a number"),
    ({"ports": [80], "source": "10.0.0.999"}, "invalid source '10.0.0.999'"),
    ({"ports": [80], "address": "10.0.0.999"}, "invalid address '10.0.0.999'"),
    ({"ports": [80], "management": {"source": "10.0.0.999"}}, "invalid management source '10.0.0.999'"),
])
def test_bad_input_fails_naming_the_value(ruleset, args, needle):
    args = dict({"backend": "nftables"}, **args)
    result = run(args, check_mode=not NS, prefix=ruleset() if NS else None)
    assert result["failed"] is True
    assert needle in result["msg"]
    assert not result.get("changed")
    assert "commands" not in result
