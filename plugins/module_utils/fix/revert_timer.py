# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Commit-confirm for firewall changes: a timer on the host that undoes a change unless it is
confirmed in time.

:func:`arm` starts a detached watchdog (a session of its own, no stdio, so ssh does not wait for
it) *before* the change is made.  If :func:`confirm` does not reach it within ``timeout`` seconds -
the change cut the management connection, the controller died, the run was interrupted - the
watchdog undoes the change itself through the same library the modules use (firewalld's runtime
configuration, ufw, or the raw nftables/iptables accept rule), and records what it did.  The state
lives in ``/run/netdiag-reachability/revert-<id>.json`` (tmpfs: a reboot ends the timer; a
firewalld runtime change is gone then anyway, a ufw rule is not - see the module's notes).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, NetdiagError

STATE_DIR = "/run/netdiag-reachability"
MIN_TIMEOUT, MAX_TIMEOUT = 10, 3600
RAW_BACKENDS = ("nftables", "iptables-nft", "iptables-legacy")
BACKENDS = ("firewalld", "ufw") + RAW_BACKENDS
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


# --------------------------------------------------------------------------- what to undo

def normalize_undo(undo):
    """The undo, checked with the backend's own request check (so a bad one fails before anything is
    armed); returns the plain dict the watchdog runs."""
    if not isinstance(undo, dict):
        raise InputError("undo must be a dict with backend and ports, got %r" % (undo,))
    backend = undo.get("backend")
    if backend not in BACKENDS:
        raise InputError("undo.backend %r: expected one of %s" % (backend, ", ".join(BACKENDS)))
    state = undo.get("state", "absent")
    if state not in ("present", "absent"):
        raise InputError("undo.state %r: expected present or absent" % (state,))
    ports = undo.get("ports") or []
    if not isinstance(ports, list) or not (ports or undo.get("services") or undo.get("rich_rules")):
        raise InputError("undo.ports must be a non-empty list (the ports the change opens or closes), got %r" % (ports,))
    out = {"backend": backend, "state": state, "ports": list(ports)}
    if backend == "firewalld":
        if not undo.get("zone"):
            raise InputError("undo.zone is required for firewalld (the zone the change goes to)")
        out.update(zone=str(undo["zone"]), services=list(undo.get("services") or []),
                   rich_rules=list(undo.get("rich_rules") or []))
        _firewalld_request(out)
    elif backend == "ufw":
        out["source"] = undo.get("source")
        _ufw_request(out)
    else:
        for key in ("source", "address", "forward_to", "family", "table", "chain"):
            out[key] = undo.get(key)
        _raw_request(out)
    return out


def _firewalld_request(undo):
    from ansible_collections.netdiag.reachability.plugins.module_utils.fix import firewalld_port
    return firewalld_port.normalize_request(ports=undo["ports"], services=undo["services"], state=undo["state"],
                                            runtime=True, permanent=False, zone=undo["zone"],
                                            rich_rules=undo.get("rich_rules"))


def _ufw_request(undo):
    from ansible_collections.netdiag.reachability.plugins.module_utils.fix import ufw_port
    return ufw_port.normalize_request(undo["ports"], undo["state"], undo.get("source"))


def _raw_request(undo):
    from ansible_collections.netdiag.reachability.plugins.module_utils.fix import raw_rule
    return raw_rule.normalize_request(undo["backend"], undo["ports"], undo["state"], undo.get("source"),
                                      undo.get("address"), undo.get("forward_to"))


def run_undo(undo):
    """Undo the change now (the watchdog calls this at the deadline); returns ``{changed, msg}``."""
    if undo["backend"] == "firewalld":
        from ansible_collections.netdiag.reachability.plugins.module_utils.fix import firewalld_port
        backend, _reason = firewalld_port.connect()
        res = firewalld_port.ensure(backend, _firewalld_request(undo))
    elif undo["backend"] == "ufw":
        from ansible_collections.netdiag.reachability.plugins.module_utils.fix import ufw_port
        res = ufw_port.ensure(_ufw_request(undo))
    else:
        from ansible_collections.netdiag.reachability.plugins.module_utils.fix import raw_rule
        hints = {k: undo.get(k) for k in ("family", "table", "chain")}
        res = raw_rule.ensure(_raw_request(undo), hints=hints)
    return {"changed": bool(res.get("changed")), "msg": res.get("msg")}


# --------------------------------------------------------------------------- the timer

def _check_id(timer_id):
    if not isinstance(timer_id, str) or not _ID.match(timer_id):
        raise InputError("invalid timer id %r (letters, digits, '_', '.', '-'; at most 64)" % (timer_id,))
    return timer_id


def _paths(timer_id, state_dir):
    base = os.path.join(state_dir, "revert-%s" % timer_id)
    return {"state": base + ".json", "confirm": base + ".confirm", "ready": base + ".ready"}


def _read(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _write(path, data):
    with open(path + ".tmp", "w") as fh:
        json.dump(data, fh)
    os.rename(path + ".tmp", path)


def _alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def arm(undo, timeout, timer_id=None, state_dir=STATE_DIR, undoer=run_undo):
    """Start the timer; returns ``{id, timeout, deadline, undo}``.  From here on, unless
    :func:`confirm` reaches the watchdog first, ``undoer(undo)`` runs ``timeout`` seconds later."""
    undo = normalize_undo(undo)
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise InputError("timeout must be a number of seconds, got %r" % (timeout,)) from None
    if not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
        raise InputError("timeout must be %d-%d seconds, got %r" % (MIN_TIMEOUT, MAX_TIMEOUT, timeout))
    timer_id = _check_id(timer_id or uuid.uuid4().hex[:16])
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    paths = _paths(timer_id, state_dir)
    old = _read(paths["state"])
    if old and old.get("status") == "armed" and _alive(old.get("pid")):
        raise InputError("revert timer %s is already armed on this host (until %s)" % (
            timer_id, time.strftime("%H:%M:%S", time.localtime(old.get("deadline", 0)))))
    for path in paths.values():
        if os.path.exists(path):
            os.unlink(path)
    deadline = time.time() + timeout
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the watchdog, a detached child (its code is tested through _watch)
        try:
            _detach()
            _watch(paths, undo, deadline, undoer)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)  # the intermediate child exits at once; the watchdog lives on
    limit = time.time() + 5.0
    while time.time() < limit and not os.path.exists(paths["ready"]):
        time.sleep(0.02)
    if not os.path.exists(paths["ready"]):
        raise NetdiagError("the revert timer did not start within 5 s: nothing was changed")
    return {"id": timer_id, "timeout": timeout, "deadline": deadline, "undo": undo}


def _detach():  # pragma: no cover - runs in the detached child
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def _watch(paths, undo, deadline, undoer, poll=0.1):
    """The watchdog's loop: wait for a confirmation until the deadline, else undo."""
    stop = {"signal": None}

    def _term(signum, _frame):
        stop["signal"] = signum

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _term)
    state = {"pid": os.getpid(), "status": "armed", "deadline": deadline, "undo": undo, "armed_at": time.time()}
    _write(paths["state"], state)
    with open(paths["ready"], "w") as fh:
        fh.write("ready\n")
    while time.time() < deadline and stop["signal"] is None:
        if os.path.exists(paths["confirm"]):
            state.update(status="confirmed", confirmed_at=time.time())
            _write(paths["state"], state)
            return state
        time.sleep(poll)
    # the deadline, or a signal (the host shuts down, someone kills the timer): not confirmed - undo
    state["reason"] = "signal %d" % stop["signal"] if stop["signal"] else "not confirmed within the timeout"
    try:
        state["result"] = undoer(undo)
        state["status"] = "reverted"
    except Exception as exc:  # pylint: disable=broad-except  # the watchdog must record any failure
        state.update(status="revert_failed", error="%s: %s" % (type(exc).__name__, exc))
    state["reverted_at"] = time.time()
    _write(paths["state"], state)
    return state


def confirm(timer_id, state_dir=STATE_DIR, wait=5.0):
    """Confirm the change: the timer stops and the change stays.  Returns ``{id, confirmed, reverted,
    status, ...}``; ``reverted`` is true when the timer had already undone it (then it is not confirmed)."""
    timer_id = _check_id(timer_id)
    paths = _paths(timer_id, state_dir)
    state = _read(paths["state"])
    if state is None:
        raise InputError("no revert timer %s on this host (never armed, or the host rebooted since)" % timer_id)
    if state.get("status") == "armed":
        with open(paths["confirm"], "w") as fh:
            fh.write("confirmed\n")
        limit = time.time() + wait
        while time.time() < limit:
            state = _read(paths["state"]) or state
            if state.get("status") != "armed" or not _alive(state.get("pid")):
                break
            time.sleep(0.02)
    status = state.get("status")
    if status == "armed":  # the watchdog died without a word (killed with SIGKILL): the change stays
        status = "lost"
    out = {"id": timer_id, "status": status, "confirmed": status in ("confirmed", "lost"),
           "reverted": status == "reverted", "deadline": state.get("deadline"), "undo": state.get("undo"),
           "result": state.get("result"), "error": state.get("error"), "reason": state.get("reason")}
    for path in paths.values():
        if os.path.exists(path):
            os.unlink(path)
    return out
