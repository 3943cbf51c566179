# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Allow (or stop allowing) incoming ports in ufw, with a plan computed first.

The current rules are read from ufw's own files (``rules.ufw.read_ufw``); the plan says which
``ufw allow`` / ``ufw delete allow`` commands would run and what the rule list becomes.  Check mode
returns the plan and runs nothing.  ufw has no separate runtime configuration: a command writes
user.rules and reloads the loaded rules in one step.

Before any command runs, the management connection (when given) is checked against the predicted
rules with :func:`open_ports.ufw_guard`: a change that would stop accepting new ssh connections
from the controller is refused and nothing is changed.
"""

from __future__ import annotations

import copy
import subprocess

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    MissingDependency, NetdiagError)
from ansible_collections.netdiag.reachability.plugins.module_utils.fix.ufw_guard import ufw_guard
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import change_request, format_port_spec
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import ufw as ufw_rules


class UfwError(NetdiagError):
    """The ufw command failed (its message is kept)."""


def normalize_request(ports, state="present", source=None):
    specs, src = change_request(ports, state, source, protocols=("tcp", "udp"), allow_any=True)
    return {"ports": specs, "state": state, "source": src}


def _ufw_port(first, last):
    return str(first) if first == last else "%d:%d" % (first, last)


def wanted_tuples(request, ipv6):
    """The ufw tuples the request stands for: [(v6, proto, port, to, from), ...]."""
    out = []
    src = request["source"]
    families = [False, True] if src is None else [":" in src]
    if src is None and not ipv6:
        families = [False]
    for first, last, proto in request["ports"]:
        for v6 in families:
            any_addr = "::/0" if v6 else "0.0.0.0/0"
            out.append((v6, proto, _ufw_port(first, last), any_addr, src or any_addr))
    return out


def _key(rule):
    return (bool(rule["v6"]), rule["proto"], rule["port"], rule["to"], rule["from"])


def _is_plain_allow(rule):
    return (rule["action"] == "allow" and rule["direction"] == "in" and not rule["routed"]
            and rule["from_port"] == "any" and not rule.get("app") and not rule.get("from_app")
            and not rule.get("interface_in") and not rule.get("interface_out"))


def _new_rule(t):
    v6, proto, port, to, frm = t
    rule = {"number": 0, "action": "allow", "log": None, "direction": "in", "routed": False, "proto": proto,
            "port": port, "to": to, "from_port": "any", "from": frm, "app": None, "from_app": None,
            "interface_in": None, "interface_out": None, "v6": v6, "comment": None, "tuple": None, "lines": {}}
    rule["text"] = ufw_rules._describe(rule)  # pylint: disable=protected-access
    return rule


def plan(facts, request):
    """``(commands, predicted_rules, missing_or_present)`` for the request against ufw's facts."""
    rules = facts.get("rules") or []
    existing = {_key(r) for r in rules if _is_plain_allow(r)}
    wanted = wanted_tuples(request, facts.get("ipv6", True))
    commands = []
    if request["state"] == "present":
        todo = [t for t in wanted if t not in existing]
        v4 = [r for r in rules if not r["v6"]] + [_new_rule(t) for t in todo if not t[0]]
        v6 = [r for r in rules if r["v6"]] + [_new_rule(t) for t in todo if t[0]]
        predicted = v4 + v6
        verb = ["ufw", "allow"]
    else:
        todo = [t for t in wanted if t in existing]
        predicted = [r for r in rules if not (_is_plain_allow(r) and _key(r) in todo)]
        verb = ["ufw", "--force", "delete", "allow"]
    seen = set()
    for t in todo:
        v6, proto, port, dummy, frm = t
        src = "any" if frm in ("0.0.0.0/0", "::/0") else frm
        cmd = verb + ["proto", proto, "from", src, "to", "any", "port", port]
        if tuple(cmd) not in seen:
            seen.add(tuple(cmd))
            commands.append(cmd)
    predicted = copy.deepcopy(predicted)
    for number, rule in enumerate(predicted, 1):
        rule["number"] = number
    return commands, predicted, todo


def render(facts, rules):
    defaults = facts.get("defaults") or {}
    lines = ["ufw: %s, default incoming %s" % ("active" if facts.get("enabled") else "inactive",
                                               defaults.get("incoming"))]
    lines += ["ufw rule: %s" % r["text"] for r in rules]
    return "\n".join(lines) + "\n"


def _run(argv):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise MissingDependency("ufw", package="ufw")
    return proc.returncode, proc.stdout, proc.stderr


def ensure(request, check_mode=False, management=None, root=ufw_rules.ROOT, run=None):
    """Plan, guard, and (unless ``check_mode``) run the ufw commands; return the result dict."""
    run = run or _run
    facts = ufw_rules.read_ufw(root)
    if facts is None:
        raise MissingDependency("ufw (no %s/%s)" % (root.rstrip("/"), ufw_rules.CONF), package="ufw")
    commands, predicted, todo = plan(facts, request)
    notes = []
    guard = []
    if management:
        guard = ufw_guard(facts, dict(facts, rules=predicted), management)
    if not facts.get("enabled"):
        notes.append("ufw is inactive: the rules are saved but filter nothing until ufw is enabled")
    after_rules = predicted
    done = []
    if commands and not check_mode:
        for cmd in commands:
            rc, out, err = run(cmd)
            if rc != 0:
                error = UfwError("%s failed (rc=%d): %s" % (" ".join(cmd), rc, (err or out).strip()))
                error.result = {"changed": bool(done), "commands": list(done)}  # what ran before it failed
                raise error
            done.append(" ".join(cmd))
        actual = ufw_rules.read_ufw(root)
        after_rules = actual.get("rules") or []
        dummy, dummy2, left = plan(actual, request)
        if left:
            notes.append("after the change ufw still %s %s (something else changed the rules?)" % (
                "lacks" if request["state"] == "present" else "has", ", ".join(t[2] + "/" + t[1] for t in left)))
    specs = [format_port_spec(f, last, p) for f, last, p in request["ports"]]
    action = ("allow", "allowed") if request["state"] == "present" else ("remove the allow of", "removed the allow of")
    if commands:
        msg = "%s %s in ufw%s" % ("would " + action[0] if check_mode else action[1], ", ".join(specs),
                                  " from %s" % request["source"] if request["source"] else "")
    else:
        msg = "ufw already %s %s" % ("allows" if request["state"] == "present" else "does not allow", ", ".join(specs))
    changed_ports = []
    for dummy, proto, port, dummy2, dummy3 in todo:
        spec = "%s/%s" % (str(port).replace(":", "-"), proto)
        if spec not in changed_ports:
            changed_ports.append(spec)
    return {
        "changed": bool(commands),
        "ports_changed": changed_ports if commands else [],
        "commands": [" ".join(c) for c in commands],
        "rules": {"before": [r["text"] for r in facts.get("rules") or []], "after": [r["text"] for r in after_rules]},
        "enabled": bool(facts.get("enabled")),
        "default_incoming": (facts.get("defaults") or {}).get("incoming"),
        "guard": guard,
        "notes": notes,
        "diff": {"before": render(facts, facts.get("rules") or []), "after": render(facts, after_rules),
                 "before_header": "ufw rules, before", "after_header": "ufw rules, after"},
        "msg": msg,
    }
