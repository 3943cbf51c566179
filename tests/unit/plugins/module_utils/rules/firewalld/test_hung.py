# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A firewalld that owns its D-Bus name but does not answer (stopped with SIGSTOP, stuck, busy), and one that stops
answering in the middle of the read: reading says so and falls back to the files (the runtime is not known, the
loaded ruleset still decides), changing refuses and changes nothing, and a diagnosis names the rule that blocks with
a fix that says firewalld must answer first. Before, the bindings waited 25 s per call and the module failed with
the raw D-Bus error after about a minute (seen in a private namespace with the daemon stopped)."""
import copy
import json
import os

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import client as fwc
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import zones as fz
from ansible_collections.netdiag.reachability.plugins.module_utils.fix import firewalld_port as fp
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.run import explain

from ....helpers import fixture

dbus = pytest.importorskip("dbus")
pytest.importorskip("firewall.core.io.zone")

FIX = fixture("firewalld")
USR = os.path.join(FIX, "usr", "lib", "firewalld")
ETC = os.path.join(FIX, "fwd-nft", "etc", "firewalld")
NO_REPLY = "org.freedesktop.DBus.Error.NoReply"


class Bus(object):
    """The two calls the ping makes, answered as dbus-python answers them."""

    def __init__(self, owner=True, error=None):
        self.owner, self.error, self.timeouts = owner, error, []

    def name_has_owner(self, name):
        assert name == fwc.DBUS_NAME
        return self.owner

    def get_object(self, name, path, introspect=True):
        assert not introspect, "introspection is a call of its own, with the long timeout"
        bus = self

        class Obj(object):
            def Get(self, interface, prop, dbus_interface=None, timeout=None):  # pylint: disable=invalid-name
                bus.timeouts.append(timeout)
                if bus.error:
                    raise dbus.exceptions.DBusException("Did not receive a reply", name=bus.error)
                return "RUNNING"
        return Obj()


def test_a_daemon_that_does_not_answer_is_hung_within_the_ping_timeout():
    bus = Bus(error=NO_REPLY)
    with pytest.raises(fwc.FirewalldHung) as err:
        fwc._ping(bus)  # pylint: disable=protected-access
    assert bus.timeouts == [fwc.PING_TIMEOUT] and fwc.PING_TIMEOUT <= 5
    assert "did not answer within 5 s" in str(err.value) and fwc.DBUS_NAME in str(err.value)


@pytest.mark.parametrize("bus", [Bus(), Bus(owner=False), Bus(error="org.freedesktop.DBus.Error.AccessDenied")],
                         ids=["answers", "not running", "other error"])
def test_the_ping_leaves_the_other_cases_to_connect(bus):
    assert fwc._ping(bus) is None  # pylint: disable=protected-access


def _hung(config_root, system_root):
    raise fwc.FirewalldHung("firewalld owns %s on the system bus but did not answer within 5 s" % fwc.DBUS_NAME)


def test_reading_a_hung_daemon_falls_back_to_the_files_and_says_the_runtime_is_not_known():
    got = fz.read_firewalld(ETC, USR, connect=_hung)
    ref = fz.read_firewalld(ETC, USR, connect=lambda c, s: (fwc.OfflineReader(c, s), "firewalld is not running"))
    assert got["running"] is None and got["runtime"] is None and got["read_with"].startswith("offline")
    assert got["permanent"] == ref["permanent"] and ref["running"] is False
    assert "did not answer within 5 s" in got["reason"] and "the runtime configuration is not known" in got["reason"]
    assert got["reason"] in got["warnings"]


def test_a_daemon_that_stops_answering_mid_read_is_read_from_the_files():
    # the online read asks for the version first: make the daemon fail right there, after the connection
    class Fw(object):
        def get_property(self, name):
            raise dbus.exceptions.DBusException("Did not receive a reply", name=NO_REPLY)
    got = fz.read_firewalld(ETC, USR, connect=lambda c, s: (fwc.OnlineReader(Fw(), None), None))
    assert got["running"] is None and got["runtime"] is None and got["permanent"]["zones"]
    assert got["reason"].startswith("firewalld stopped answering on D-Bus during the read (%s" % NO_REPLY)
    assert got["reason"] in got["warnings"]


def test_a_library_error_mid_read_is_not_hidden_as_a_fallback():
    class Fw(object):
        def get_property(self, name):
            raise KeyError("version")
    with pytest.raises(KeyError):
        fz.read_firewalld(ETC, USR, connect=lambda c, s: (fwc.OnlineReader(Fw(), None), None))


def test_changing_a_hung_daemon_refuses_and_says_nothing_changed(monkeypatch):
    monkeypatch.setattr(fp, "connect_reader", lambda *a, **k: _hung(None, None))
    with pytest.raises(fwc.FirewalldHung) as err:
        fp.connect(ETC, USR)
    assert "did not answer within 5 s" in str(err.value) and "nothing was changed" in str(err.value)


def test_a_diagnosis_names_the_blocking_rule_and_says_firewalld_must_answer_first():
    with open(fixture("explain", "seeds-facts.json")) as fh:
        seeds = json.load(fh)
    hosts = copy.deepcopy(seeds["hosts"])
    fwd = hosts["fwd-nft"]["firewall"]["firewalld"]
    reason = "firewalld owns %s on the system bus but did not answer within 5 s (stopped, stuck or busy)" % fwc.DBUS_NAME
    fwd.update(running=None, runtime=None, read_with="offline (firewall.core.io)", reason=reason)
    flows = [copy.deepcopy(f) for f in seeds["flows"] if f["address"] == "10.200.2.11" and f["port"] == 80]
    ref = explain(copy.deepcopy(flows), seeds["hosts"])["flows"][0]
    got = explain(flows, hosts)["flows"][0]
    assert got["cause"] == ref["cause"] == "host_firewall"
    # the rule in the kernel decides, as before; only the zone text and the fix change
    for key in ("table", "chain", "handle"):
        assert got["culprit"][key] == ref["culprit"][key], (key, got["culprit"], ref["culprit"])
    fix = got["fix"]
    assert fix["manual"] and fix["open_ports"] is None
    assert fix["summary"].startswith("firewalld on fwd-nft did not answer (%s): restart it" % reason)
    assert [c["command"] for c in fix["commands"]] == [
        "systemctl restart firewalld", "firewall-cmd --zone=public --add-port=80/tcp",
        "firewall-cmd --permanent --zone=public --add-port=80/tcp"]
    assert not ref["fix"]["manual"]


def test_the_zone_answer_of_a_hung_daemon_does_not_say_it_is_stopped():
    facts = fz.read_firewalld(ETC, USR, connect=_hung)
    got = fz.zone_answer(facts, {"family": "ipv4", "proto": "tcp", "src": "10.200.1.10", "dst": "10.200.2.11",
                                 "dport": 80, "iif": "eth0"})
    assert got["reason"].startswith("firewalld did not answer (") and "not running" not in got["reason"]
    assert "so what its zones do now is not known; the loaded ruleset decides" in got["reason"]


def test_saved_facts_with_a_null_read_with_are_not_a_crash():
    """Saved facts handed to the filters may carry null where a string is expected."""
    facts = fz.read_firewalld(ETC, USR, connect=_hung)
    facts["read_with"] = None
    got = fz.zone_answer(facts, {"family": "ipv4", "proto": "tcp", "src": "10.200.1.10", "dst": "10.200.2.11",
                                 "dport": 80, "iif": "eth0"})
    assert got["reason"].startswith("firewalld did not answer (")
