"""The revert_timer module as a user calls it: bad input fails with a message naming it and arms nothing,
check mode starts no timer, confirming a timer that does not exist says so. (Timers that really run and undo
are tested on the library with a recording undo, and on the lab.)"""
import glob

import pytest

from ..helpers import run_module

UFW = {"backend": "ufw", "ports": ["8080/tcp"], "source": "10.200.1.10"}


def _timers():
    return set(glob.glob("/run/netdiag-reachability/revert-*"))


@pytest.mark.parametrize("args,needle", [
    ({}, "undo is required with state=armed"),
    ({"undo": {"backend": "ufw", "ports": ["70000/tcp"]}}, "70000"),
    ({"undo": {"backend": "ufw", "ports": ["8²/tcp"]}}, "8²"),
    ({"undo": UFW, "timeout": 4000}, "timeout must be 10-3600 seconds, got 4000.0"),
    ({"undo": UFW, "id": "a/b"}, "invalid timer id 'a/b'"),
    ({"state": "confirmed"}, "id is required with state=confirmed"),
    ({"state": "confirmed", "id": "netdiag-test-nosuch"}, "no revert timer netdiag-test-nosuch on this host"),
])
def test_bad_input_fails_with_a_message_and_arms_nothing(args, needle):
    before = _timers()
    res = run_module("revert_timer", args)
    assert res["failed"] and needle in res["msg"], res
    assert _timers() == before


def test_check_mode_checks_the_undo_and_starts_no_timer():
    before = _timers()
    res = run_module("revert_timer", {"undo": dict(UFW, state="absent"), "timeout": 60}, check_mode=True)
    assert not res.get("failed") and not res["changed"], res
    assert res["undo"] == {"backend": "ufw", "state": "absent", "ports": ["8080/tcp"], "source": "10.200.1.10"}
    assert "not started" in res["msg"] and _timers() == before
