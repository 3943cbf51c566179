#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ufw_port
short_description: Allow incoming ports in ufw (or remove such allows), with a dry-run diff and a management-connection guard
version_added: "0.1.0"
description:
  - Adds (O(state=present)) or removes (O(state=absent)) ufw rules that allow incoming O(ports),
    from anywhere or from O(source) only, like C(ufw allow proto tcp from SOURCE to any port 80).
  - The current rules are read from ufw's own files; only the rules that are missing (or, for
    O(state=absent), present) are changed, so a second run changes nothing.
  - Check mode computes the exact C(ufw) commands and the resulting rule list and runs nothing.
  - Before changing anything, the module checks that ufw still accepts new ssh connections of the
    management connection (O(management), by default the ssh connection the module runs over,
    from C(SSH_CONNECTION)) with the predicted rules; a change that would cut it is refused,
    the task fails and nothing is changed.
  - ufw has no separate runtime configuration; each command saves the rule and reloads ufw.
author:
  - netdiag.reachability developers (@netdiag)
requirements:
  - ufw on the target.
options:
  ports:
    description:
      - Ports to allow, as V(PORT/PROTOCOL) or V(FIRST-LAST/PROTOCOL) (V(tcp) or V(udp)); a spec without
        a protocol means tcp.
    type: list
    elements: raw
    required: true
  state:
    description: V(present) adds the allow rules, V(absent) removes them.
    type: str
    choices: [present, absent]
    default: present
  source:
    description: Allow only from this address or network. Without it, from anywhere (IPv4 and IPv6).
    type: str
extends_documentation_fragment:
  - netdiag.reachability.attributes
  - netdiag.reachability.management
attributes:
  check_mode:
    support: full
    description: Computes the commands and the resulting rules without running anything.
  diff_mode:
    support: full
    description: Returns ufw's rules before and after, one line per rule.
  platform:
    platforms: linux
    details: Linux hosts with ufw.
"""

EXAMPLES = r"""
- name: Let the web tier reach 80/tcp (see the change first)
  netdiag.reachability.ufw_port:
    ports: ["80/tcp"]
    source: 10.0.1.0/24
  check_mode: true
  diff: true

- name: Stop allowing 8080/tcp from anywhere
  netdiag.reachability.ufw_port:
    ports: [8080]
    state: absent
"""

RETURN = r"""
commands:
  description: The ufw commands that ran (in check mode, would run); empty when nothing changes.
  returned: always
  type: list
  elements: str
  sample: ["ufw allow proto tcp from 10.200.1.10 to any port 80"]
ports_changed:
  description:
    - The ports (C(PORT/PROTO) or C(FIRST-LAST/PROTO)) whose allow this call added (or, with O(state=absent), removed);
      in check mode, would. Ports ufw already allowed (or did not allow) are not in it, so undoing exactly this call
      is the opposite O(state) for these ports.
  returned: always
  type: list
  elements: str
  sample: ["80/tcp"]
rules:
  description: ufw's rules (as C(ufw status) writes them) before and after (in check mode, predicted).
  returned: always
  type: dict
  sample: {"before": ["22/tcp ALLOW IN Anywhere"], "after": ["22/tcp ALLOW IN Anywhere", "80/tcp ALLOW IN 10.200.1.10"]}
enabled:
  description: Whether ufw is active.
  returned: always
  type: bool
  sample: true
default_incoming:
  description: ufw's default incoming policy.
  returned: always
  type: str
  sample: deny
guard:
  description: What the management-connection check found; empty when it was skipped.
  returned: always
  type: list
  elements: str
  sample: ["ufw: accept before (ufw rule 22/tcp ALLOW IN Anywhere), accept after (ufw rule 22/tcp ALLOW IN Anywhere)"]
notes:
  description: What the user should know (ufw inactive, unexpected state after the change).
  returned: always
  type: list
  elements: str
  sample: []
diff:
  description: ufw's rules before and after as text, for C(--diff).
  returned: always
  type: dict
  sample: {"before": "ufw: active, default incoming deny\nufw rule: 22/tcp ALLOW IN Anywhere\n",
           "after": "ufw: active, default incoming deny\nufw rule: 22/tcp ALLOW IN Anywhere\nufw rule: 80/tcp ALLOW IN 10.200.1.10\n"}
msg:
  description: One line saying what changed or would change.
  returned: always
  type: str
  sample: "allowed 80/tcp in ufw from 10.200.1.10"
"""

import os

from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.fix.guard import (
    MANAGEMENT_ARG_SPEC, WouldCutManagement, module_management)
from ansible_collections.netdiag.reachability.plugins.module_utils.fix.ufw_port import ensure, normalize_request


def _ensure(module):
    p = module.params
    request = normalize_request(p["ports"], p["state"], p["source"])
    mgmt = module_management(p["management"], os.environ.get("SSH_CONNECTION"))
    result = ensure(request, check_mode=module.check_mode, management=mgmt)
    if not mgmt:
        result["guard"] = ["no management connection known (no SSH_CONNECTION): not checked"]
    return result


def main():
    run_module(dict(
        ports=dict(type="list", elements="raw", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        source=dict(type="str"),
        management=MANAGEMENT_ARG_SPEC,
    ), _ensure, warn=["notes"], refusals=[WouldCutManagement], done_key="commands")


if __name__ == "__main__":
    main()
