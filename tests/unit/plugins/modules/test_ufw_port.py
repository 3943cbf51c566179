# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ufw_port run as Ansible runs it (module file + ANSIBLE_MODULE_ARGS on stdin).

Never against the host's ufw: every run is in a private network namespace and a private mount
namespace where tmp copies of the captured ufw host's files
(tests/unit/fixtures/firewall_info/scratch-ufw) are bind-mounted over /etc/ufw and /etc/default.
The plans are made in check mode, which runs no ufw command; the bad inputs must fail before
anything is read.  Where namespaces cannot be made (not root), only the bad inputs run, in check
mode, so that a bug can still run nothing.
"""

import os
import shutil

import pytest

from .. import helpers
from .test_firewall_info import digest

NS = helpers.private_namespaces_work()
needs_ns = pytest.mark.skipif(not NS, reason="needs network and mount namespaces (root)")
NO_SSH = {k: v for k, v in os.environ.items() if k != "SSH_CONNECTION"}


@pytest.fixture
def ufw_host(tmp_path):
    root = tmp_path / "scratch-ufw"
    shutil.copytree(helpers.fixture("firewall_info", "scratch-ufw"), root)
    prefix = helpers.private_namespaces([(root / "etc" / "ufw", "/etc/ufw"),
                                         (root / "etc" / "default", "/etc/default")]) if NS else None
    return prefix, root


def run(ufw_host, args, check_mode=True, env=None):
    prefix, root = ufw_host
    before = digest(root)
    result = helpers.run_module("ufw_port", args, check_mode=check_mode or not NS, env=env or NO_SSH, prefix=prefix)
    assert digest(root) == before, "the ufw files changed"
    return result


@needs_ns
def test_check_mode_plans_the_allow_and_runs_nothing(ufw_host):
    result = run(ufw_host, {"ports": ["80/tcp"], "source": "10.200.200.0/24"})
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is True
    assert result["commands"] == ["ufw allow proto tcp from 10.200.200.0/24 to any port 80"]
    assert result["ports_changed"] == ["80/tcp"]
    assert result["msg"] == "would allow 80/tcp in ufw from 10.200.200.0/24"
    before, after = result["rules"]["before"], result["rules"]["after"]
    assert "22/tcp ALLOW IN Anywhere" in before and "80/tcp ALLOW IN 10.200.200.0/24" not in before
    assert sorted(after) == sorted(before + ["80/tcp ALLOW IN 10.200.200.0/24"])
    assert "ufw rule: 80/tcp ALLOW IN 10.200.200.0/24\n" in result["diff"]["after"]
    assert "ufw rule: 80/tcp" not in result["diff"]["before"]
    assert (result["enabled"], result["default_incoming"]) == (True, "deny")
    assert result["guard"] == ["no management connection known (no SSH_CONNECTION): not checked"]
    assert result["notes"] == [] and "warnings" not in result


@needs_ns
def test_a_port_already_allowed_changes_nothing(ufw_host):
    result = run(ufw_host, {"ports": [22]})
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is False
    assert result["commands"] == [] and result["ports_changed"] == []
    assert result["msg"] == "ufw already allows 22/tcp"
    assert result["rules"]["before"] == result["rules"]["after"]


@needs_ns
def test_the_ssh_connection_is_guarded(ufw_host):
    result = run(ufw_host, {"ports": [80]}, env=dict(NO_SSH, SSH_CONNECTION="10.9.9.9 50000 10.200.200.5 22"))
    assert "failed" not in result, result.get("msg")
    assert result["guard"] == ["ufw: accept before (ufw rule 22/tcp ALLOW IN Anywhere), "
                               "accept after (ufw rule 22/tcp ALLOW IN Anywhere)"]


@needs_ns
def test_a_change_that_cuts_the_management_connection_is_refused(ufw_host):
    result = run(ufw_host, {"ports": ["22/tcp"], "state": "absent", "management": {"source": "10.9.9.9"}})
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("refusing to change ufw: it would no longer accept new ssh connections "
                                    "from 10.9.9.9 to this host port 22/tcp")
    assert "error" not in result and "commands" not in result


@needs_ns
def test_no_ufw_fails_naming_the_package(tmp_path):
    empty = tmp_path / "no-ufw"
    empty.mkdir()
    prefix = helpers.private_namespaces([(empty, "/etc/ufw")])
    result = helpers.run_module("ufw_port", {"ports": [80]}, check_mode=True, env=NO_SSH, prefix=prefix)
    assert result["failed"] is True and result["changed"] is False
    assert result["package"] == "ufw"
    assert result["msg"].startswith("ufw (no /etc/ufw/ufw.conf) is required but not available (install ufw)")
    assert "Python" in result["msg"]


@pytest.mark.parametrize("args,needle", [
    ({"ports": [0]}, "invalid port '0': must be between 1 and 65535"),
    ({"ports": [65536]}, "invalid port '65536': must be between 1 and 65535"),
    ({"ports": ["70000/tcp"]}, "invalid port '70000': must be between 1 and 65535"),
    ({"ports": ["9000-8000/tcp"]}, "invalid port range '9000-8000': 9000 is greater than 8000"),
    ({"ports": ["80/icmp"]}, "unknown protocol 'icmp'"),
    ({"ports": ["http"]}, "invalid port 'http': not a number"),
    ({"ports": [[80]]}, "invalid port spec [80]"),
    ({"ports": ["8\u00b2"]}, "invalid port '8\u00b2': not a number"),
    ({"ports": ["\uff18\uff10/tcp"]}, "invalid port '\uff18\uff10': not a number"),
    ({"ports": ["80-8\u00b2/tcp"]}, "invalid port '8\u00b2': not a number"),
    ({"ports": [80], "state": "maybe"}, "value of state must be one of: present, absent, got: maybe"),
    ({"ports": {"80": "tcp"}}, "argument 'ports' is of type dict"),
    ({}, "missing required arguments: ports"),
    ({"ports": [80], "source": "10.0.0.999"}, "invalid source '10.0.0.999'"),
    ({"ports": [80], "management": {"source": "10.0.0.999"}}, "invalid management source '10.0.0.999'"),
    ({"ports": [80], "management": {"source": "10.9.9.9", "port": 70000}}, "management: invalid port 70000"),
    ({"ports": [80], "management": {"port": 22}}, "missing required arguments: source"),
])
def test_bad_input_fails_naming_the_value(ufw_host, args, needle):
    result = run(ufw_host, args, check_mode=False)
    assert result["failed"] is True
    assert needle in result["msg"]
    assert not result.get("changed")
    assert "commands" not in result
