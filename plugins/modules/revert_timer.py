#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: revert_timer
short_description: Commit-confirm for firewall changes - undo a change on the host unless it is confirmed in time
version_added: "0.1.0"
description:
  - With O(state=armed), starts a timer on the host B(before) a firewall change, and returns its RV(id). Unless
    O(state=confirmed) reaches it within O(timeout) seconds, the host undoes the change by itself, through the same
    library as M(netdiag.reachability.firewalld_port) (runtime configuration only),
    M(netdiag.reachability.ufw_port) or M(netdiag.reachability.raw_rule) - also when the change cut the
    management connection, the controller died or the run was interrupted.
  - The timer is a detached process on the host (its own session, no terminal), so the module returns at once.
    Its state is kept in C(/run/netdiag-reachability/revert-ID.json).
  - With O(state=confirmed), stops the timer and keeps the change. When the timer has already undone the change,
    RV(reverted) is true and RV(confirmed) false - the caller should fail (the open_ports role does).
  - The undo is checked when the timer is armed; an invalid one fails the task and arms nothing.
author:
  - netdiag.reachability developers (@netdiag)
options:
  state:
    description: V(armed) starts a timer, V(confirmed) stops one and keeps the change.
    type: str
    choices: [armed, confirmed]
    default: armed
  id:
    description:
      - The timer. Required with O(state=confirmed) (the RV(id) that O(state=armed) returned); with O(state=armed),
        a name of your own (letters, digits, C(_), C(.), C(-)) instead of a generated one.
    type: str
  timeout:
    description:
      - Seconds until the change is undone unless confirmed, 10 to 3600. Leave time for the connection check and the
        verification that come between the change and the confirmation.
    type: float
    default: 120
  undo:
    description:
      - What undoes the change, with O(state=armed). Keys C(backend) (V(firewalld), V(ufw), V(nftables),
        V(iptables-nft), V(iptables-legacy)), C(ports) (the ports the change opens; for the change's opposite) and
        C(state) (the undo's own state, default V(absent) - the undo of opening ports); for firewalld C(zone)
        (required), C(services) and C(rich_rules); for ufw and the raw backends C(source); for the raw backends C(address),
        C(forward_to), C(family), C(table) and C(chain), as the modules take them.
      - List only what the change adds (the RV(netdiag.reachability.firewalld_port#module:ports_changed) of a check-mode
        run), so the undo never removes what was there before.
    type: dict
extends_documentation_fragment:
  - netdiag.reachability.attributes
attributes:
  check_mode:
    support: full
    description: Checks the undo and starts no timer; confirms nothing.
  diff_mode:
    support: none
  platform:
    platforms: linux
    details: Linux hosts; the undo needs what the backend's module needs (firewalld's bindings, ufw, nft or iptables).
notes:
  - A reboot ends the timer. A firewalld runtime change is gone after a reboot anyway; a ufw or raw rule made
    persistent is not, so confirm or undo it.
  - For firewalld, a change that was only made at runtime is undone at runtime; make it permanent after the
    confirmation.
seealso:
  - module: netdiag.reachability.firewalld_port
  - module: netdiag.reachability.ufw_port
  - module: netdiag.reachability.raw_rule
"""

EXAMPLES = r"""
- name: Arm the revert timer before opening 8080/tcp in ufw
  netdiag.reachability.revert_timer:
    timeout: 120
    undo: {backend: ufw, ports: ["8080/tcp"], source: 10.0.1.0/24}
  register: timer

- name: Open it
  netdiag.reachability.ufw_port:
    ports: ["8080/tcp"]
    source: 10.0.1.0/24

- name: The host still answers over ssh
  ansible.builtin.wait_for_connection:
    timeout: 30

- name: Keep the change
  netdiag.reachability.revert_timer:
    state: confirmed
    id: "{{ timer.id }}"
  register: confirmed
  failed_when: confirmed.reverted
"""

RETURN = r"""
id:
  description: The timer's id.
  returned: always
  type: str
  sample: 3f2a9c0d1b7e4f55
deadline:
  description: When the change is (was) undone unless confirmed, seconds since the epoch; null in check mode.
  returned: always
  type: float
  sample: 1796660000.5
undo:
  description: The undo, as checked.
  returned: always
  type: dict
  sample: {"backend": "ufw", "state": "absent", "ports": ["8080/tcp"], "source": "10.0.1.0/24"}
status:
  description:
    - V(armed) after O(state=armed); after O(state=confirmed), V(confirmed), V(reverted) (the timer undid the change
      first), V(revert_failed) (it tried and failed, see RV(error)) or V(lost) (the timer process was killed without a
      word, so nothing undoes the change).
  returned: always
  type: str
  sample: confirmed
confirmed:
  description: The change stays (O(state=confirmed)).
  returned: always
  type: bool
  sample: true
reverted:
  description: The timer undid the change before it was confirmed; RV(reason) says why and RV(result) what it did.
  returned: always
  type: bool
  sample: false
reason:
  description: Why the timer undid the change (V(not confirmed within the timeout), or the signal that ended it).
  returned: when reverted
  type: str
result:
  description: What the undo did (C(changed), C(msg)).
  returned: when reverted
  type: dict
error:
  description: Why the undo failed.
  returned: when the status is revert_failed
  type: str
msg:
  description: One line saying what happened.
  returned: always
  type: str
  sample: "revert timer 3f2a9c0d1b7e4f55 armed: the change is undone in 120 s unless confirmed"
"""

import time

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.fix import revert_timer as lib


def _run(module):
    p = module.params
    if p["state"] == "armed":
        if p["undo"] is None:
            raise InputError("undo is required with state=armed")
        if module.check_mode:
            undo = lib.normalize_undo(p["undo"])
            return {"id": p["id"] or "", "deadline": None, "undo": undo, "status": "armed", "confirmed": False,
                    "reverted": False, "msg": "check mode: the revert timer was not started"}
        res = lib.arm(p["undo"], p["timeout"], timer_id=p["id"])
        return {"changed": True, "id": res["id"], "deadline": res["deadline"], "undo": res["undo"], "status": "armed",
                "confirmed": False, "reverted": False,
                "msg": "revert timer %s armed: the change is undone in %g s unless confirmed" % (res["id"], res["timeout"])}
    if not p["id"]:
        raise InputError("id is required with state=confirmed (the id state=armed returned)")
    if module.check_mode:
        return {"id": p["id"], "deadline": None, "undo": None, "status": "armed", "confirmed": False, "reverted": False,
                "msg": "check mode: the revert timer was not confirmed"}
    res = lib.confirm(p["id"])
    when = time.strftime("%H:%M:%S", time.localtime(res["deadline"])) if res.get("deadline") else "?"
    msg = {"confirmed": "revert timer %s confirmed: the change stays" % p["id"],
           "lost": "revert timer %s was gone (killed): nothing undoes the change, it stays" % p["id"],
           "reverted": "revert timer %s undid the change at %s, before it was confirmed (%s)" % (p["id"], when, res.get("reason")),
           "revert_failed": "revert timer %s tried to undo the change at %s and failed: %s" % (p["id"], when, res.get("error"))}
    out = dict(res, changed=res["status"] in ("confirmed", "lost"), msg=msg.get(res["status"], res["status"]))
    return {k: v for k, v in out.items() if v is not None or k in ("deadline", "undo")}


def main():
    run_module(dict(
        state=dict(type="str", choices=["armed", "confirmed"], default="armed"),
        id=dict(type="str"),
        timeout=dict(type="float", default=120),
        undo=dict(type="dict"),
    ), _run)


if __name__ == "__main__":
    main()
