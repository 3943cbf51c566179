# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the roles compute between module calls, as plain functions (the filters in
plugins/filter/roles.py are their front ends): the roles' tasks only orchestrate.

Every function takes plain data (dicts, lists, scalars) and returns plain data.
"""

from __future__ import annotations


def _join(values, sep):
    """Jinja's ``join``: each value as text."""
    return sep.join("%s" % (v,) for v in values)


# -- reachability -------------------------------------------------------------------------------

def mismatches(report):
    """``"ADDRESS PORT CAUSE"`` for every flow of a report whose outcome differs from its expect."""
    return [_join((f.get("address"), f.get("port"), f.get("cause")), " ")
            for f in (report or {}).get("flows") or [] if not f.get("matches_expect")]


# -- open_ports ---------------------------------------------------------------------------------

def _reply_kind(result):
    """The reply's kind; ``False`` when the result has no reply with a kind (``None`` is a kind of none)."""
    reply = result.get("reply")
    if isinstance(reply, dict) and "kind" in reply:
        return reply["kind"]
    return False


def still_blocked(probe_result):
    """The ports of a probe result the firewall still blocks.

    A port is let through when it is open, or when the host itself answered with a reset (nothing
    listens yet, but the packet got in).  Ports that got no reply come first, then those answered
    with anything else (an ICMP error, ...), each in probe order.
    """
    results = [r for r in (probe_result or {}).get("results") or [] if r.get("state") != "open"]
    silent = [r.get("port") for r in results if _reply_kind(r) is False]
    refused = [r.get("port") for r in results if _reply_kind(r) is not False and _reply_kind(r) != "rst"]
    return silent + refused


def verify_failure(failed, rule, target, result=None):
    """The failure message when ports are still blocked after a change, per backend.

    ``result`` is what the backend's change returned: the firewalld_port preview (its ``zone``), the
    raw_rule result (its ``commands``); ufw needs none.
    """
    result = result or {}
    head = "%s still cannot reach %s on %s" % (rule.get("verify_from"), _join(failed, ", "), target)
    backend = rule.get("backend")
    if backend == "firewalld":
        tail = ("after opening them in firewalld zone %s: the runtime change was reverted and nothing was made "
                "permanent." % (result.get("zone"),))
    elif backend == "ufw":
        tail = "after allowing them in ufw: the change was reverted."
    else:
        tail = "after inserting %s: the rules were removed again." % _join(result.get("commands") or [], "; ")
    return head + " " + tail


def firewalld_messages(runtime, permanent):
    """What a firewalld rule changed: the runtime change's message, the permanent change's message
    and its notes (each only when that step changed something)."""
    runtime, permanent = runtime or {}, permanent or {}
    out = [runtime.get("msg")] if runtime.get("changed") else []
    if permanent.get("changed"):
        out += [permanent.get("msg")] + list(permanent.get("notes") or [])
    return out


def _flatten(values):
    out = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out.extend(_flatten(v))
        elif v not in (None, "None", "null"):  # as Ansible's flatten: nulls are skipped
            out.append(v)
    return out


def outcome(hosts, hostvars, manual=None):
    """What the open_ports role did on ``hosts``: the changes per host, the rules not applied and
    the manual actions.  ``hostvars`` maps each host to its ``open_ports_changed`` and
    ``open_ports_not_applied`` (a host without them changed nothing)."""
    hosts = list(hosts or [])
    hv = {h: hostvars.get(h) or {} for h in hosts}
    return {
        "changed": {h: hv[h].get("open_ports_changed", []) for h in hosts},
        "rules_not_applied": _flatten(hv[h].get("open_ports_not_applied", []) for h in hosts),
        "manual_actions": list(manual or []),
    }
