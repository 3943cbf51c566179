"""Commit-confirm (fix/revert_timer.py): armed before the change, the timer undoes it by itself unless the
confirmation comes in time - through a real detached process here, with an undo that records what it did."""
import json
import os
import time

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils.fix import revert_timer as rt

UFW = {"backend": "ufw", "ports": ["8080/tcp"], "source": "10.200.1.10"}


def recorder(path):
    def undo(spec):
        with open(path, "a") as fh:
            fh.write(json.dumps(spec) + "\n")
        return {"changed": True, "msg": "removed %s" % spec["ports"]}
    return undo


def test_unconfirmed_the_host_undoes_the_change_by_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(rt, "MIN_TIMEOUT", 0.5)
    log = tmp_path / "undone"
    res = rt.arm(UFW, 1.0, state_dir=str(tmp_path), undoer=recorder(str(log)))
    assert not log.exists(), "undone before the deadline"
    time.sleep(1.6)
    assert [json.loads(line)["ports"] for line in log.read_text().splitlines()] == [["8080/tcp"]]
    out = rt.confirm(res["id"], state_dir=str(tmp_path))
    assert out["reverted"] and not out["confirmed"] and out["status"] == "reverted"
    assert out["reason"] == "not confirmed within the timeout" and out["result"]["msg"] == "removed ['8080/tcp']"
    assert not [f for f in os.listdir(tmp_path) if f.startswith("revert-")], "state left behind"


def test_confirmed_in_time_the_change_stays(tmp_path, monkeypatch):
    monkeypatch.setattr(rt, "MIN_TIMEOUT", 0.5)
    log = tmp_path / "undone"
    res = rt.arm(UFW, 1.5, state_dir=str(tmp_path), undoer=recorder(str(log)))
    out = rt.confirm(res["id"], state_dir=str(tmp_path))
    assert out["confirmed"] and not out["reverted"] and out["status"] == "confirmed"
    time.sleep(2.0)
    assert not log.exists(), "a confirmed change was undone"


def test_a_killed_timer_undoes_the_change(tmp_path, monkeypatch):
    """SIGTERM (the host shutting down, someone killing it) is not a confirmation."""
    import signal
    monkeypatch.setattr(rt, "MIN_TIMEOUT", 0.5)
    log = tmp_path / "undone"
    res = rt.arm(UFW, 30, state_dir=str(tmp_path), undoer=recorder(str(log)))
    state = json.loads((tmp_path / ("revert-%s.json" % res["id"])).read_text())
    os.kill(state["pid"], signal.SIGTERM)
    for _i in range(50):
        if log.exists():
            break
        time.sleep(0.1)
    assert log.exists()
    out = rt.confirm(res["id"], state_dir=str(tmp_path))
    assert out["reverted"] and out["reason"] == "signal %d" % signal.SIGTERM


def test_an_undo_that_fails_is_recorded(tmp_path):
    def broken(_spec):
        raise OSError("ufw: command not found")
    paths = rt._paths("t1", str(tmp_path))
    state = rt._watch(paths, rt.normalize_undo(UFW), time.time() + 0.2, broken, poll=0.02)
    assert state["status"] == "revert_failed" and "ufw: command not found" in state["error"]
    assert rt.confirm("t1", state_dir=str(tmp_path))["status"] == "revert_failed"


@pytest.mark.parametrize("undo,timeout,needle", [
    ({"backend": "pf", "ports": ["80/tcp"]}, 60, "undo.backend 'pf'"),
    ({"backend": "ufw", "ports": []}, 60, "undo.ports must be a non-empty list"),
    ({"backend": "ufw", "ports": ["70000/tcp"]}, 60, "70000"),
    ({"backend": "firewalld", "ports": ["80/tcp"]}, 60, "undo.zone is required"),
    ({"backend": "nftables", "ports": ["80/tcp"], "source": "10.0.0.999"}, 60, "10.0.0.999"),
    (UFW, 5, "timeout must be 10-3600 seconds, got 5.0"),
    (UFW, "soon", "timeout must be a number of seconds, got 'soon'"),
    ("ufw 80", 60, "undo must be a dict"),
])
def test_a_bad_undo_or_timeout_arms_nothing(tmp_path, undo, timeout, needle):
    with pytest.raises(InputError) as err:
        rt.arm(undo, timeout, state_dir=str(tmp_path), undoer=recorder(str(tmp_path / "x")))
    assert needle in str(err.value)
    assert not os.listdir(tmp_path)


def test_confirming_an_unknown_timer_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no revert timer nosuch on this host"):
        rt.confirm("nosuch", state_dir=str(tmp_path))
    with pytest.raises(InputError, match="invalid timer id"):
        rt.confirm("../etc/passwd", state_dir=str(tmp_path))
