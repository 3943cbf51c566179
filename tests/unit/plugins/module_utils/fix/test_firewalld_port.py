# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the firewalld_port library: input, plan, diff, offline edit."""

import hashlib
import os
import random
import shutil
import subprocess
import sys

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.fix import firewalld_port as fd
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    BackendUnavailable, InputError)
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import client as fc

from ...helpers import fixture

FIX = fixture("firewalld")
LAB_PUBLIC = {"services": ["dhcpv6-client", "ssh"], "ports": ["8000/tcp"]}


def settings(**kw):
    base = fc.normalize_settings({"services": ["ssh", "dhcpv6-client"], "ports": [("8000", "tcp")],
                                  "forward": True})
    base.update(kw)
    return base


def req(**kw):
    return fd.normalize_request(**kw)


# --------------------------------------------------------------------------- input

@pytest.mark.parametrize("kwargs, needle", [
    (dict(ports=["0/tcp"]), "'0/tcp'"),
    (dict(ports=[0]), "'0'"),
    (dict(ports=["70000/tcp"]), "'70000/tcp'"),
    (dict(ports=["abc/tcp"]), "'abc/tcp'"),
    (dict(ports=["9000/icmp"]), "'icmp'"),
    (dict(ports=["9010-9000/tcp"]), "'9010-9000/tcp'"),
    (dict(ports=["9000-70000/udp"]), "'9000-70000/udp'"),
    (dict(ports=[""]), "''"),
    (dict(ports=["9000/tcp/udp"]), "9000/tcp/udp"),
    (dict(ports=[True]), "True"),
    (dict(ports=["9000"], protocol="icmp"), "'icmp'"),
    (dict(services=["bad name"]), "'bad name'"),
    (dict(services=[""]), "''"),
    (dict(ports=["9000"], state="open"), "'open'"),
    (dict(ports=["9000"], runtime=False, permanent=False), "both false"),
    (dict(ports=["9000"], timeout=60), "permanent: false"),
    (dict(ports=["9000"], timeout=-1), "-1"),
    (dict(ports=["9000"], timeout=60, permanent=False, state="absent"), "state=present"),
    (dict(ports=["9000"], source="10.0.0.300"), "'10.0.0.300'"),
    (dict(ports=["9000"], zone="public", interface="eth0"), "'public'"),
    (dict(), "nothing to do"),
    (dict(rich_rules=["rule family=ipv4 port port=80 protocol=tcp acept"]), "'rule family=ipv4 port port=80 protocol=tcp acept'"),
    (dict(rich_rules=["rule family=ipv5 accept"]), "invalid rich rule 'rule family=ipv5 accept'"),
    (dict(rich_rules=[""]), "invalid rich rule ''"),
    (dict(rich_rules="rule accept"), "expected a list"),
])
def test_bad_input_names_the_value(kwargs, needle):
    with pytest.raises(InputError) as err:
        req(**kwargs)
    assert needle in str(err.value)


def test_request_normalized():
    r = req(ports=["9000", "9001-9003/UDP", 9000, "9000/tcp"], services=["https", "https"], protocol="tcp")
    assert r["ports"] == [{"first": 9000, "last": 9000, "protocol": "tcp"},
                          {"first": 9001, "last": 9003, "protocol": "udp"}]
    assert r["services"] == ["https"]
    assert r["runtime"] and r["permanent"] and r["timeout"] == 0
    r = req(ports=["9000"], timeout=30, permanent=False)
    assert r["timeout"] == 30 and not r["permanent"]


# --------------------------------------------------------------------------- plan

@pytest.mark.parametrize("ports, spec, state, ops, after", [
    # add a port that is not there
    (["8000/tcp"], "9000/tcp", "present", [("add_port", "9000", "tcp")], ["8000/tcp", "9000/tcp"]),
    # the same port in another protocol does not count
    (["9000/udp"], "9000/tcp", "present", [("add_port", "9000", "tcp")], ["9000/tcp", "9000/udp"]),
    # covered by one range
    (["9000-9010/tcp"], "9005/tcp", "present", [], ["9000-9010/tcp"]),
    # covered by the union of two ranges: nothing to open
    (["9000-9004/tcp", "9005-9010/tcp"], "9003-9006/tcp", "present", [],
     ["9000-9004/tcp", "9005-9010/tcp"]),
    # overlapping ranges are merged, as firewalld does
    (["9000-9005/tcp", "9008/tcp"], "9003-9009/tcp", "present", [("add_port", "9003-9009", "tcp")],
     ["9000-9009/tcp"]),
    # adjacent ranges are not merged by firewalld
    (["9000/tcp"], "9001/tcp", "present", [("add_port", "9001", "tcp")], ["9000/tcp", "9001/tcp"]),
    # remove a port that is there
    (["8000/tcp", "9000/tcp"], "9000/tcp", "absent", [("remove_port", "9000", "tcp")], ["8000/tcp"]),
    # remove a port that is not there: nothing
    (["8000/tcp"], "9000/tcp", "absent", [], ["8000/tcp"]),
    (["9000/udp"], "9000/tcp", "absent", [], ["9000/udp"]),
    # remove inside a range splits it
    (["9000-9010/tcp"], "9005/tcp", "absent", [("remove_port", "9005", "tcp")],
     ["9000-9004/tcp", "9006-9010/tcp"]),
    # remove a range that covers several entries, one call per entry it cuts
    (["9001/tcp", "9003-9006/tcp", "9020/tcp"], "9000-9004/tcp", "absent",
     [("remove_port", "9001", "tcp"), ("remove_port", "9003-9004", "tcp")],
     ["9005-9006/tcp", "9020/tcp"]),
])
def test_plan_ports(ports, spec, state, ops, after):
    current = settings(ports=fc.sort_ports(ports))
    got_ops, predicted = fd.plan_zone(current, req(ports=[spec], state=state))
    assert [(o["action"], o["port"], o["protocol"]) for o in got_ops] == ops
    assert predicted["ports"] == after
    assert predicted["services"] == current["services"]
    # planning again from the predicted state finds nothing to do: a second run is unchanged
    assert fd.plan_zone(predicted, req(ports=[spec], state=state))[0] == []


def test_plan_services():
    current = settings()
    ops, after = fd.plan_zone(current, req(services=["https", "ssh"]))
    assert ops == [{"action": "add_service", "service": "https"}]
    assert after["services"] == ["dhcpv6-client", "https", "ssh"]
    ops, after = fd.plan_zone(after, req(services=["https", "ftp"], state="absent"))
    assert ops == [{"action": "remove_service", "service": "https"}]
    assert after["services"] == ["dhcpv6-client", "ssh"]
    assert current["services"] == ["dhcpv6-client", "ssh"], "the input settings must not be modified"


def test_range_logic_matches_firewalld():
    """_coalesce/_break give what firewalld's own functions give (firewall.functions)."""
    functions = pytest.importorskip("firewall.functions")

    def norm(ranges):
        return sorted((r[0], r[0]) if len(r) == 1 else tuple(r) for r in ranges)

    rnd = random.Random(8)
    for dummy in range(2000):
        ranges = []
        for dummy2 in range(rnd.randint(0, 5)):
            lo = rnd.randint(1, 60)
            ranges.append((lo, lo + rnd.choice([0, 0, 1, 3, 10])))
        lo = rnd.randint(1, 60)
        new = (lo, lo + rnd.choice([0, 2, 5, 20]))
        ours_new, ours_removed = fd._coalesce(new, ranges)
        theirs_added, theirs_removed = functions.coalescePortRange(new, ranges)
        assert norm([ours_new]) == norm(theirs_added)
        assert norm(ours_removed) == norm(theirs_removed), (new, ranges)
        ours_added, ours_removed = fd._break(new, ranges)
        theirs_added, theirs_removed = functions.breakPortRange(new, ranges)
        assert norm(ours_added) == norm(theirs_added) and norm(ours_removed) == norm(theirs_removed)


def test_render_settings_one_line_per_item():
    text = fd.render_settings("public", {"runtime": settings(), "permanent": settings(ports=[])})
    lines = text.splitlines()
    assert "runtime zone public: port 8000/tcp" in lines
    assert "runtime zone public: service ssh" in lines
    assert "permanent zone public: forward yes" in lines
    assert not any(line.startswith("permanent") and "port 8000" in line for line in lines)


# --------------------------------------------------------------------------- offline

@pytest.fixture
def roots(tmp_path):
    etc = str(tmp_path / "etc-firewalld")
    shutil.copytree(os.path.join(FIX, "fwd-nft", "etc", "firewalld"), etc)
    return etc, os.path.join(FIX, "usr", "lib", "firewalld")


def digest(root):
    h = hashlib.sha256()
    for base, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(base, name)
            h.update(path.encode())
            with open(path, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


def read_zone(path):
    zone_io = pytest.importorskip("firewall.core.io.zone")
    return zone_io.zone_reader(os.path.basename(path), os.path.dirname(path))


def test_offline_four_steps(roots):
    etc, usr = roots
    backend = fd.OfflineBackend(etc, usr)
    request = req(ports=["9000/tcp", "9001-9003/udp"], services=["https"])
    before = digest(etc)

    res = fd.ensure(backend, request, check_mode=True)
    assert res["changed"] and res["offline"] and res["zone"] == "public"
    assert res["configs"] == ["permanent"]
    assert digest(etc) == before, "check mode wrote something"
    assert res["settings"]["after"]["permanent"]["ports"] == ["8000/tcp", "9000/tcp", "9001-9003/udp"]
    assert "+permanent zone public: port 9000/tcp" not in res["diff"]["before"]
    assert "permanent zone public: port 9000/tcp" in res["diff"]["after"].splitlines()
    assert any("offline" in n for n in res["notes"])
    assert res["ports_changed"] == ["9000/tcp", "9001-9003/udp"], "services are not ports"
    assert res["runtime_ports_changed"] == [], "offline: only the permanent configuration changes"

    res = fd.ensure(backend, request)
    assert res["changed"] and res["ports_changed"] == ["9000/tcp", "9001-9003/udp"]
    path = os.path.join(etc, "zones", "public.xml")
    assert res["config_file"] == path
    zone = read_zone(path)
    assert sorted(zone.ports) == [("8000", "tcp"), ("9000", "tcp"), ("9001-9003", "udp")]
    assert sorted(zone.services) == ["dhcpv6-client", "https", "ssh"]
    assert zone.forward is True, "the rest of the zone must be kept"
    assert os.path.exists(path + ".old")
    assert not [f for f in os.listdir(etc) if f.startswith(".netdiag-")], "temporary directory left behind"

    after = digest(etc)
    res = fd.ensure(backend, request, check_mode=True)
    assert not res["changed"] and res["changes"] == [] and res["ports_changed"] == []
    res = fd.ensure(backend, request)
    assert not res["changed"]
    assert digest(etc) == after

    res = fd.ensure(backend, req(ports=["9000/tcp", "9001-9003/udp"], services=["https"], state="absent"))
    assert res["changed"]
    zone = read_zone(path)
    assert sorted(zone.ports) == [("8000", "tcp")] and sorted(zone.services) == ["dhcpv6-client", "ssh"]


@pytest.mark.parametrize("changes,expected", [
    ([], []),
    ([{"config": "runtime", "port": "80", "protocol": "tcp"}], ["80/tcp"]),
    ([{"config": "runtime", "port": "8000-8010", "protocol": "tcp"}, {"config": "runtime", "service": "http"},
      {"config": "permanent", "port": "8000-8010", "protocol": "tcp"},
      {"config": "runtime", "port": "53", "protocol": "udp"}],
     ["8000-8010/tcp", "53/udp"]),                # once each, services are not reverted as ports
])
def test_ports_changed_are_what_to_revert(changes, expected):
    assert fd.ports_changed(changes) == expected


def test_offline_builtin_zone_is_copied_to_etc(roots):
    etc, usr = roots
    backend = fd.OfflineBackend(etc, usr)
    res = fd.ensure(backend, req(ports=["9000/sctp"], zone="internal"))
    assert res["changed"]
    zone = read_zone(os.path.join(etc, "zones", "internal.xml"))
    assert zone.ports == [("9000", "sctp")]
    assert "samba-client" in zone.services, "built-in services of the zone must be kept"
    with open(os.path.join(usr, "zones", "internal.xml")) as fh:
        assert "9000" not in fh.read()


def test_offline_keeps_rich_rules_and_bindings(roots):
    etc, usr = roots
    with open(os.path.join(etc, "zones", "work.xml"), "w") as fh:
        fh.write('<?xml version="1.0" encoding="utf-8"?>\n<zone target="DROP">\n  <short>Work</short>\n'
                 '  <source address="10.200.1.0/24"/>\n  <service name="ssh"/>\n'
                 '  <rule family="ipv4"><source address="10.1.1.1"/><port port="22" protocol="tcp"/>'
                 '<reject/></rule>\n</zone>\n')
    backend = fd.OfflineBackend(etc, usr)
    res = fd.ensure(backend, req(ports=["9000/dccp"], source="10.200.1.10"))
    assert (res["zone"], res["zone_from"]) == ("work", "source")
    assert res["settings"]["before"]["permanent"]["target"] == "DROP"
    zone = read_zone(os.path.join(etc, "zones", "work.xml"))
    assert zone.ports == [("9000", "dccp")]
    assert zone.target == "DROP" and zone.sources == ["10.200.1.0/24"]
    assert len(zone.rules_str) == 1 and "reject" in zone.rules_str[0]


@pytest.mark.parametrize("kwargs, needle", [
    (dict(ports=["9000/tcp"], zone="nosuchzone"), "'nosuchzone'"),
    (dict(services=["nosuchservice"]), "'nosuchservice'"),
    (dict(ports=["9000/tcp"], services=["https", "nosuchservice"]), "'nosuchservice'"),
])
def test_offline_unknown_names_change_nothing(roots, kwargs, needle):
    etc, usr = roots
    before = digest(etc)
    with pytest.raises(InputError) as err:
        fd.ensure(fd.OfflineBackend(etc, usr), req(**kwargs))
    assert needle in str(err.value)
    assert digest(etc) == before


def test_offline_undefined_service_can_be_removed_when_listed(roots):
    etc, usr = roots
    path = os.path.join(etc, "zones", "public.xml")
    with open(path) as fh:
        text = fh.read()
    with open(path, "w") as fh:
        fh.write(text.replace('<service name="ssh"/>', '<service name="ssh"/>\n  <service name="gone"/>'))
    res = fd.ensure(fd.OfflineBackend(etc, usr), req(services=["gone"], state="absent"))
    assert res["changed"] and "gone" not in read_zone(path).services


def test_offline_runtime_only_is_refused(roots):
    etc, usr = roots
    before = digest(etc)
    with pytest.raises(BackendUnavailable) as err:
        fd.ensure(fd.OfflineBackend(etc, usr), req(ports=["9000"], permanent=False),
                  offline_reason="firewalld is not running")
    assert "runtime" in str(err.value) and "not running" in str(err.value)
    assert digest(etc) == before


def test_offline_default_zone_from_conf(roots):
    etc, usr = roots
    conf = os.path.join(etc, "firewalld.conf")
    with open(conf) as fh:
        text = fh.read()
    with open(conf, "w") as fh:
        fh.write(text.replace("DefaultZone=public", "DefaultZone=trusted"))
    res = fd.ensure(fd.OfflineBackend(etc, usr), req(ports=["9000"]), check_mode=True)
    assert res["zone"] == "trusted" and res["zone_from"] == "default"


def test_connect_without_daemon_goes_offline(roots, tmp_path):
    """No system bus: connect() says so and returns the offline backend (run in a child process
    so that dbus's per-process bus cache does not leak between tests)."""
    pytest.importorskip("firewall.client")
    etc, usr = roots
    code = ("import sys; sys.path[:0] = %r\n"
            "from ansible_collections.netdiag.reachability.plugins.module_utils.fix import firewalld_port as fd\n"
            "b, why = fd.connect(%r, %r)\nprint(b.offline, b.config_root, why)\n" % (sys.path, etc, usr))
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS="unix:path=%s" % (tmp_path / "no-bus"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.startswith("True %s " % etc)
    assert "firewalld is not" in out


# --------------------------------------------------------------------------- rich rules

RULE = 'rule family="ipv4" source address="10.200.1.10" port port="9197" protocol="tcp" accept'


def test_rich_rules_are_checked_and_normalised_as_firewalld_does():
    pytest.importorskip("firewall.core.rich")
    r = req(rich_rules=["rule family=ipv4 source address=10.200.1.10 port port=9197 protocol=tcp accept", RULE])
    assert r["rich_rules"] == [RULE], "two spellings of one rule are one rule"
    with pytest.raises(InputError) as err:
        req(rich_rules=[RULE, "rule family=ipv4 source address=10.200.1.10 port port=9197 accept"])
    assert "invalid rich rule 'rule family=ipv4 source address=10.200.1.10 port port=9197 accept'" in str(err.value)


def test_plan_rich_rules_is_idempotent():
    pytest.importorskip("firewall.core.rich")
    current = settings(rich_rules=['rule family="ipv4" source address="10.1.1.1" drop'])
    ops, after = fd.plan_zone(current, req(rich_rules=[RULE]))
    assert ops == [{"action": "add_rich_rule", "rich_rule": RULE}]
    assert after["rich_rules"] == sorted([RULE, 'rule family="ipv4" source address="10.1.1.1" drop'])
    assert after["ports"] == current["ports"], "a rich rule is not a port of the zone"
    spelled = "rule port port=9197 protocol=tcp source address=10.200.1.10 family=ipv4 accept"
    assert fd.plan_zone(after, req(rich_rules=[spelled]))[0] == []
    ops, back = fd.plan_zone(after, req(rich_rules=[spelled], state="absent"))
    assert ops == [{"action": "remove_rich_rule", "rich_rule": RULE}] and back["rich_rules"] == current["rich_rules"]
    assert fd.describe_operation(ops[0]) == "remove rich rule '%s'" % RULE
    assert fd.rich_rules_changed([dict(o, config="runtime") for o in ops] * 2) == [RULE]


def _ipset_root(etc, ipset_type="hash:net", entry="10.200.1.0/24"):
    os.makedirs(os.path.join(etc, "ipsets"), exist_ok=True)
    with open(os.path.join(etc, "ipsets", "admins.xml"), "w") as fh:
        fh.write('<?xml version="1.0" encoding="utf-8"?>\n<ipset type="%s">\n  <entry>%s</entry>\n</ipset>\n'
                 % (ipset_type, entry))
    path = os.path.join(etc, "zones", "internal.xml")
    shutil.copy(os.path.join(FIX, "usr", "lib", "firewalld", "zones", "internal.xml"), path)
    with open(path) as fh:
        text = fh.read()
    with open(path, "w") as fh:
        fh.write(text.replace("</zone>", '  <source ipset="admins"/>\n</zone>'))
    return path


def test_offline_rich_rule_in_the_zone_of_the_sources_ipset(roots):
    etc, usr = roots
    path = _ipset_root(etc)
    backend = fd.OfflineBackend(etc, usr)
    request = req(rich_rules=[RULE], source="10.200.1.10")
    res = fd.ensure(backend, request, check_mode=True)
    assert (res["zone"], res["zone_from"]) == ("internal", "ipset")
    assert res["zone_reason"] == "source 10.200.1.10 is in ipset admins (entry 10.200.1.0/24), bound to zone internal"
    assert res["changes"] == [{"action": "add_rich_rule", "rich_rule": RULE, "config": "permanent"}]
    assert res["rich_rules_changed"] == [RULE] and res["ports_changed"] == [] and res["runtime_rich_rules_changed"] == []
    assert "permanent zone internal: rich-rule %s" % RULE in res["diff"]["after"].splitlines()
    assert RULE not in res["diff"]["before"]
    before = digest(etc)
    res = fd.ensure(backend, request)
    assert res["changed"] and res["msg"].startswith("changed zone internal (permanent: add rich rule '%s')" % RULE)
    assert digest(etc) != before
    zone = read_zone(path)
    assert zone.rules_str == [RULE] and zone.sources == ["ipset:admins"]
    assert "samba-client" in zone.services, "the rest of the zone is kept"
    public = read_zone(os.path.join(etc, "zones", "public.xml"))
    assert public.rules_str == [] and public.ports == [("8000", "tcp")], "nothing in the default zone"
    after = digest(etc)
    res = fd.ensure(backend, req(rich_rules=["rule family=ipv4 source address=10.200.1.10 port port=9197 protocol=tcp accept"],
                                 source="10.200.1.10"))
    assert not res["changed"] and res["rich_rules_changed"] == [] and digest(etc) == after
    res = fd.ensure(backend, req(rich_rules=[RULE], zone="internal", state="absent"))
    assert res["rich_rules_changed"] == [RULE] and read_zone(path).rules_str == []


def test_offline_a_source_the_address_cannot_place_is_refused_naming_the_zones(roots):
    etc, usr = roots
    _ipset_root(etc, "hash:ip,port", "10.200.1.10,tcp:9197")
    before = digest(etc)
    with pytest.raises(InputError) as err:
        fd.ensure(fd.OfflineBackend(etc, usr), req(ports=["9197/tcp"], source="10.200.1.10"))
    msg = str(err.value)
    assert "cannot be told from the source address alone" in msg and "zone internal if so" in msg
    assert "also needs the source port" in msg and "the default zone public handles it" in msg
    assert msg.endswith("give zone (the zone to change)")
    assert digest(etc) == before


def test_online_rich_rules_go_through_the_daemon_with_the_timeout():
    calls = []

    class Zone(object):
        def addRichRule(self, rule):
            calls.append(("permanent add", rule))

        def removeRichRule(self, rule):
            calls.append(("permanent remove", rule))

    class Fw(object):
        def addRichRule(self, zone, rule, timeout):
            calls.append(("runtime add", zone, rule, timeout))

        def removeRichRule(self, zone, rule):
            calls.append(("runtime remove", zone, rule))

        def config(self):
            return type("Config", (), {"getZoneByName": lambda self, name: Zone()})()

    backend = fd.OnlineBackend(Fw(), None)
    backend.apply("internal", [{"action": "add_rich_rule", "rich_rule": RULE}], permanent=False, timeout=60)
    backend.apply("internal", [{"action": "remove_rich_rule", "rich_rule": RULE}], permanent=False)
    backend.apply("internal", [{"action": "add_rich_rule", "rich_rule": RULE}], permanent=True)
    assert calls == [("runtime add", "internal", RULE, 60), ("runtime remove", "internal", RULE), ("permanent add", RULE)]


def test_the_revert_timer_undoes_a_runtime_rich_rule():
    pytest.importorskip("firewall.core.rich")
    from ansible_collections.netdiag.reachability.plugins.module_utils.fix import revert_timer
    undo = revert_timer.normalize_undo({"backend": "firewalld", "zone": "internal", "ports": [], "rich_rules": [RULE]})
    assert undo["rich_rules"] == [RULE] and undo["state"] == "absent"
    request = revert_timer._firewalld_request(undo)
    assert request["rich_rules"] == [RULE] and request["permanent"] is False and request["state"] == "absent"
    ops, dummy = fd.plan_zone(settings(rich_rules=[RULE]), request)
    assert ops == [{"action": "remove_rich_rule", "rich_rule": RULE}]
    with pytest.raises(InputError):
        revert_timer.normalize_undo({"backend": "firewalld", "zone": "internal", "ports": [], "rich_rules": ["rule bogus"]})
