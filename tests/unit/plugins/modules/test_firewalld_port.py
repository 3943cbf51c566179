# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""firewalld_port run as Ansible runs it (module file + ANSIBLE_MODULE_ARGS on stdin).

Never against the host's firewalld: every run is in a private network namespace and a private
mount namespace with the system bus hidden (an empty directory over /run/dbus), so the module
finds firewalld not running and edits the permanent configuration offline - tmp copies of the
captured lab host's /etc/firewalld and firewalld's own /usr/lib/firewalld
(tests/unit/fixtures/firewalld) bind-mounted over the real ones.  Where namespaces cannot be
made (not root), only the bad inputs run, in check mode.
"""

import os
import shutil
import subprocess
import sys

import pytest

from .. import helpers

NS = helpers.private_namespaces_work()
HAS_BINDINGS = subprocess.run([sys.executable, "-c", "import firewall.client"], capture_output=True,
                              check=False).returncode == 0
offline = pytest.mark.skipif(not (NS and HAS_BINDINGS),
                             reason="needs network and mount namespaces (root) and the firewalld Python bindings")
NO_BUS = {k: v for k, v in os.environ.items() if "DBUS" not in k}
OFFLINE_NOTE = ("edited the permanent configuration offline; the runtime is unchanged and the change takes effect "
                "when firewalld starts")


@pytest.fixture
def host(tmp_path):
    """(run_module prefix, the tmp /etc/firewalld) of the captured host, firewalld not running."""
    etc, usr, nobus = tmp_path / "etc-firewalld", tmp_path / "usr-lib-firewalld", tmp_path / "no-dbus"
    shutil.copytree(helpers.fixture("firewalld", "fwd-nft", "etc", "firewalld"), etc)
    shutil.copytree(helpers.fixture("firewalld", "usr", "lib", "firewalld"), usr)
    nobus.mkdir()
    if not NS:
        return None, etc
    mounts = [(etc, "/etc/firewalld"), (usr, "/usr/lib/firewalld")]
    if os.path.isdir("/run/dbus"):
        mounts.append((nobus, "/run/dbus"))
    return helpers.private_namespaces(mounts), etc


def run(host, args, check_mode=False):
    prefix, dummy = host
    return helpers.run_module("firewalld_port", args, check_mode=check_mode or not NS, env=NO_BUS, prefix=prefix)


def zone_file(host):
    with open(os.path.join(str(host[1]), "zones", "public.xml")) as fh:
        return fh.read()


@offline
@pytest.mark.parametrize("check_mode", [True, False])
def test_offline_opens_a_port_and_a_service(host, check_mode):
    before = zone_file(host)
    result = run(host, {"zone": "public", "ports": ["9000/tcp"], "services": ["https"]}, check_mode=check_mode)
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is True
    assert (result["zone"], result["zone_from"], result["offline"]) == ("public", "given", True)
    assert result["configs"] == ["permanent"]
    assert result["config_file"] == "/etc/firewalld/zones/public.xml"
    assert result["changes"] == [{"action": "add_port", "port": "9000", "protocol": "tcp", "config": "permanent"},
                                 {"action": "add_service", "service": "https", "config": "permanent"}]
    assert result["settings"]["before"]["permanent"]["ports"] == ["8000/tcp"]
    assert result["settings"]["after"]["permanent"]["ports"] == ["8000/tcp", "9000/tcp"]
    assert "permanent zone public: port 9000/tcp\n" in result["diff"]["after"]
    assert "9000" not in result["diff"]["before"]
    assert any(OFFLINE_NOTE in note for note in result["notes"])
    prefix = "would change" if check_mode else "changed"
    assert result["msg"] == prefix + " zone public (permanent: add port 9000/tcp, add service https) offline, " \
                                     "firewalld not running"
    if check_mode:
        assert zone_file(host) == before
    else:
        written = zone_file(host)
        assert '<port port="9000" protocol="tcp"/>' in written and '<service name="https"/>' in written
        assert os.path.exists(os.path.join(str(host[1]), "zones", "public.xml.old"))


@offline
def test_the_default_zone_is_used_and_a_second_run_changes_nothing(host):
    first = run(host, {"ports": ["9000/tcp"]})
    assert first["changed"] is True, first.get("msg")
    assert first["zone_from"] == "default"
    assert first["zone_reason"] == "no zone, interface or source given: the default zone public handles it"
    again = run(host, {"ports": ["9000/tcp"]})
    assert "failed" not in again, again.get("msg")
    assert again["changed"] is False and again["changes"] == []
    assert again["msg"] == "zone public already has what was asked"


@offline
def test_closing_part_of_a_range_is_minimal(host):
    assert run(host, {"zone": "public", "ports": ["9000-9010/udp"]})["changed"] is True
    result = run(host, {"zone": "public", "ports": ["9005/udp"], "state": "absent"}, check_mode=True)
    assert result["changed"] is True
    assert result["settings"]["after"]["permanent"]["ports"] == ["8000/tcp", "9000-9004/udp", "9006-9010/udp"]


@offline
def test_runtime_only_cannot_be_done_offline(host):
    before = zone_file(host)
    result = run(host, {"ports": [80], "permanent": False, "timeout": 10})
    assert result["failed"] is True and result["changed"] is False
    assert result["error"] == "BackendUnavailable" and result["changes"] == []
    assert result["msg"].endswith("the runtime configuration (permanent: false) cannot be changed")
    assert zone_file(host) == before


@offline
@pytest.mark.parametrize("args,needle", [
    ({"zone": "nope", "ports": [80]}, "unknown zone 'nope' (offline zones: drop, internal, public, trusted)"),
    ({"zone": "public", "services": ["nosuch"]}, "unknown service 'nosuch' (not defined in the offline configuration)"),
])
def test_unknown_names_fail_and_change_nothing(host, args, needle):
    before = zone_file(host)
    result = run(host, args)
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == needle
    assert "changes" not in result
    assert zone_file(host) == before
    assert zone_file(host) == before


RULE = 'rule family="ipv4" source address="10.200.1.10" port port="9197" protocol="tcp" accept'


@offline
@pytest.mark.parametrize("check_mode", [True, False])
def test_offline_rich_rule_goes_to_the_zone_of_the_sources_ipset(host, check_mode):
    etc = str(host[1])
    os.makedirs(os.path.join(etc, "ipsets"))
    shutil.copy(helpers.fixture("firewalld", "ipsets", "etc", "firewalld", "ipsets", "admins.xml"), os.path.join(etc, "ipsets"))
    with open(helpers.fixture("firewalld", "usr", "lib", "firewalld", "zones", "internal.xml")) as fh:
        internal = fh.read().replace("</zone>", '  <source ipset="admins"/>\n</zone>')
    with open(os.path.join(etc, "zones", "internal.xml"), "w") as fh:
        fh.write(internal)
    before = zone_file(host)
    result = run(host, {"source": "10.200.1.10", "rich_rules": [
        "rule family=ipv4 source address=10.200.1.10 port port=9197 protocol=tcp accept"]}, check_mode=check_mode)
    assert "failed" not in result, result.get("msg")
    assert (result["zone"], result["zone_from"]) == ("internal", "ipset")
    assert result["zone_reason"] == "source 10.200.1.10 is in ipset admins (entry 10.200.1.0/24), bound to zone internal"
    assert result["changes"] == [{"action": "add_rich_rule", "rich_rule": RULE, "config": "permanent"}]
    assert result["rich_rules_changed"] == [RULE] and result["ports_changed"] == []
    assert "permanent zone internal: rich-rule %s\n" % RULE in result["diff"]["after"]
    assert zone_file(host) == before, "the default zone is not touched"
    with open(os.path.join(etc, "zones", "internal.xml")) as fh:
        written = fh.read()
    if check_mode:
        assert written == internal
    else:
        assert '<source address="10.200.1.10"/>' in written and '<port port="9197" protocol="tcp"/>' in written
        again = run(host, {"zone": "internal", "rich_rules": [RULE]})
        assert again["changed"] is False and again["rich_rules_changed"] == []


def bindings_dir():
    got = subprocess.run([sys.executable, "-c", "import os, firewall; print(os.path.dirname(firewall.__file__))"],
                         capture_output=True, text=True, check=False)
    return got.stdout.strip() if got.returncode == 0 else None


@pytest.mark.skipif(HAS_BINDINGS and not NS, reason="the firewalld Python bindings are installed and cannot be hidden")
def test_without_the_bindings_it_fails_naming_the_package(host, tmp_path):
    prefix = host[0]
    if HAS_BINDINGS:  # hide them: an empty directory over the package, in the module's own mount namespace
        empty = tmp_path / "no-firewall-package"
        empty.mkdir()
        prefix = helpers.private_namespaces([(empty, bindings_dir())])
    result = helpers.run_module("firewalld_port", {"zone": "public", "ports": ["8080/tcp"]}, check_mode=True,
                                env=NO_BUS, prefix=prefix)
    assert result["failed"] is True and result["changed"] is False
    assert result["package"] == "python3-firewall"
    assert "the firewalld Python bindings (firewall.client, dbus) is required but not available " \
           "(install python3-firewall)" in result["msg"]
    assert sys.executable in result["msg"]  # the Python it is missing from
    assert "error" not in result and "changes" not in result


@pytest.mark.parametrize("args,needle", [
    ({"ports": [0]}, "invalid port '0': must be between 1 and 65535"),
    ({"ports": [65536]}, "invalid port '65536': must be between 1 and 65535"),
    ({"ports": ["70000/udp"]}, "invalid port '70000': must be between 1 and 65535"),
    ({"ports": ["9000-8000/tcp"]}, "invalid port range '9000-8000': 9000 is greater than 8000"),
    ({"ports": ["80/icmp"]}, "unknown protocol 'icmp'"),
    ({"ports": ["8\u00b2"]}, "invalid port '8\u00b2': not a number"),
    ({"ports": ["\uff18\uff10/tcp"]}, "invalid port '\uff18\uff10': not a number"),
    ({"ports": ["80-8\u00b2/tcp"]}, "invalid port '8\u00b2': not a number"),
    ({"ports": [80], "state": "maybe"}, "value of state must be one of: present, absent, got: maybe"),
    ({"ports": [80], "protocol": "icmp"}, "value of protocol must be one of: tcp, udp, sctp, dccp, got: icmp"),
    ({"ports": [80], "timeout": "soon"}, "argument 'timeout' is of type str and we were unable to convert to int"),
    ({"ports": [80], "timeout": -5}, "invalid timeout -5"),
    ({"ports": [80], "timeout": 60}, "timeout 60 applies to the runtime configuration only: set permanent: false"),
    ({"ports": [80], "timeout": 60, "permanent": False, "state": "absent"}, "timeout 60 only applies to state=present"),
    ({"ports": [80], "runtime": False, "permanent": False}, "runtime and permanent are both false"),
    ({}, "nothing to do: give ports, services or rich_rules"),
    ({"rich_rules": ["rule family=ipv4 port port=80 protocol=tcp acept"]},
     "invalid rich rule 'rule family=ipv4 port port=80 protocol=tcp acept': INVALID_RULE: unknown element acept"),
    ({"services": ["ht tp"]}, "invalid service name 'ht tp'"),
    ({"services": ["a/b"]}, "invalid service name 'a/b'"),
    ({"ports": [80], "zone": " "}, "invalid zone name ' '"),
    ({"ports": [80], "source": "10.0.0.999"}, "invalid source '10.0.0.999'"),
    ({"ports": [80], "zone": "public", "interface": "eth0"}, "parameters are mutually exclusive: zone|interface"),
])
def test_bad_input_fails_naming_the_value(host, args, needle):
    before = zone_file(host)
    result = run(host, dict({"zone": "public"} if not {"zone", "interface", "source"} & set(args) else {}, **args))
    assert result["failed"] is True
    assert needle in result["msg"]
    assert not result.get("changed")
    assert "changes" not in result
    assert zone_file(host) == before
