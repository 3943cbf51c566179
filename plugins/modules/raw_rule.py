#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: raw_rule
short_description: Insert the minimal nftables or iptables accept rule right before the rule that blocks a port
version_added: "0.1.0"
description:
  - For hosts whose firewall is raw nftables or iptables (nft or legacy), reads the live ruleset into
    the collection's rule model, walks a new incoming packet for each of O(ports) through it and, when it
    is dropped or rejected, inserts an accept rule for exactly that port (and O(source)) right before
    the deciding rule (C(nft insert rule ... position HANDLE), C(iptables -I CHAIN N)), or appends it
    when the chain's policy decided. Ports that are already accepted are left alone, so a second run
    changes nothing.
  - Every rule added carries the comment C(netdiag.reachability open_ports); O(state=absent) removes
    such rules only, never rules it did not add.
  - Tables managed by firewalld or ufw are refused (use M(netdiag.reachability.firewalld_port) or
    M(netdiag.reachability.ufw_port)); a port blocked by another backend than O(backend) is refused
    with a message naming the backend and rule.
  - Before changing anything, the management connection (O(management), by default the ssh
    connection the module runs over) is walked through the ruleset before and after; a change that
    would stop accepting it is refused and nothing is changed.
  - Check mode computes the exact commands and the resulting chains and runs nothing.
  - Rules are added to the running ruleset only; the result notes how to save them.
author:
  - netdiag.reachability developers (@netdiag)
requirements:
  - nft and/or iptables-save on the target (root).
options:
  backend:
    description: The firewall that blocks the port.
    type: str
    choices: [nftables, iptables-nft, iptables-legacy]
    required: true
  ports:
    description: Ports to accept, V(PORT/PROTOCOL) or V(FIRST-LAST/PROTOCOL); without a protocol, tcp.
    type: list
    elements: raw
    required: true
  state:
    description: V(present) accepts the ports; V(absent) removes the rules this module added for them.
    type: str
    choices: [present, absent]
    default: present
  source:
    description: Accept only from this address or network.
    type: str
  address:
    description:
      - This host's address the traffic is sent to (rules that match on the destination are then
        decided). Defaults to the address of the management connection.
    type: str
  forward_to:
    description:
      - For a router - the flow is forwarded by this host to this address rather than sent to it. The packet walks
        the forward path (its interfaces from this host's routes toward O(source) and O(forward_to)), and the accept
        rule matches this destination (and O(source) when given), right before the forward rule that blocks it.
      - The management-connection guard still checks this host's own ssh connection (the input path).
    type: str
    version_added: "0.2.0"
  family:
    description: The nftables family of the blocking rule as the report named it (a hint; the live ruleset decides).
    type: str
  table:
    description: The table of the blocking rule as the report named it (a hint; a different one is noted).
    type: str
  chain:
    description: The chain of the blocking rule as the report named it (a hint; a different one is noted).
    type: str
extends_documentation_fragment:
  - netdiag.reachability.attributes
  - netdiag.reachability.management
attributes:
  check_mode:
    support: full
    description: Computes the commands and the resulting chains without running anything.
  diff_mode:
    support: full
    description: Returns the changed chains before and after, one line per rule.
  platform:
    platforms: linux
    details: Linux hosts with nftables or iptables.
"""

EXAMPLES = r"""
- name: Accept 80/tcp before the nftables rule that drops it (dry run first)
  netdiag.reachability.raw_rule:
    backend: nftables
    ports: ["80/tcp"]
  check_mode: true
  diff: true

- name: Accept 3306/tcp from the app network in iptables-legacy
  netdiag.reachability.raw_rule:
    backend: iptables-legacy
    ports: ["3306/tcp"]
    source: 10.0.2.0/24

- name: Remove what was added
  netdiag.reachability.raw_rule:
    backend: iptables-legacy
    ports: ["3306/tcp"]
    source: 10.0.2.0/24
    state: absent

- name: On a router, accept 8081/tcp forwarded to 10.200.2.10 before the forward rule that drops it
  netdiag.reachability.raw_rule:
    backend: nftables
    ports: ["8081/tcp"]
    forward_to: 10.200.2.10
"""

RETURN = r"""
rules:
  description:
    - The rules inserted or deleted (in check mode, that would be), with where.
    - C(port) (C(PORT/PROTO)) is the requested port an inserted rule opens; null for deleted rules.
  returned: always
  type: list
  elements: dict
  sample: [{"port": "80/tcp", "backend": "nftables", "family": "inet", "table": "filter", "chain": "input",
            "rule": "tcp dport 80 accept comment \"netdiag.reachability open_ports\""}]
commands:
  description: The exact commands that ran (in check mode, would run).
  returned: always
  type: list
  elements: str
  sample: ["nft insert rule inet filter input position 2 tcp dport 80 accept comment \"netdiag.reachability open_ports\""]
guard:
  description: What the management-connection check found; empty when nothing changes.
  returned: always
  type: list
  elements: str
  sample: ["new ssh connections from 10.200.255.1 to port 22/tcp: accept before, accept after"]
notes:
  description: What the user should know (runtime only, hints that differ, unexpected state).
  returned: always
  type: list
  elements: str
  sample: []
diff:
  description: The changed chains before and after, one line per rule, for C(--diff).
  returned: always
  type: dict
  sample: {"before": "nftables inet filter input: tcp dport 80 drop\n",
           "after": "nftables inet filter input: tcp dport 80 accept comment \"netdiag.reachability open_ports\"\n..."}
msg:
  description: One line saying what changed or would change.
  returned: always
  type: str
  sample: "inserted 1 nftables rule for 80/tcp"
"""

import os

from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.fix.guard import (
    MANAGEMENT_ARG_SPEC, WouldCutManagement, module_management)
from ansible_collections.netdiag.reachability.plugins.module_utils.fix.raw_rule import ensure, normalize_request


def _ensure(module):
    p = module.params
    mgmt = module_management(p["management"], os.environ.get("SSH_CONNECTION"))
    address = p["address"] or (mgmt or {}).get("address")
    request = normalize_request(p["backend"], p["ports"], p["state"], p["source"], address, p["forward_to"])
    hints = {"family": p["family"], "table": p["table"], "chain": p["chain"]}
    result = ensure(request, check_mode=module.check_mode, management=mgmt, hints=hints)
    if not mgmt:
        result["guard"] = ["no management connection known (no SSH_CONNECTION): not checked"]
    return result


def main():
    run_module(dict(
        backend=dict(type="str", required=True, choices=["nftables", "iptables-nft", "iptables-legacy"]),
        ports=dict(type="list", elements="raw", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        source=dict(type="str"),
        address=dict(type="str"),
        forward_to=dict(type="str"),
        family=dict(type="str"),
        table=dict(type="str"),
        chain=dict(type="str"),
        management=MANAGEMENT_ARG_SPEC,
    ), _ensure, warn=["notes"], refusals=[WouldCutManagement], done_key="commands")


if __name__ == "__main__":
    main()
