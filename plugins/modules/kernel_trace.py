#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: kernel_trace
short_description: Ask the kernel which rule decides a packet (nft monitor trace, for seconds)
version_added: 0.1.0
description:
  - Opt-in kernel witness for the diagnosis. With O(state=present) it adds a temporary nftables table
    C(inet netdiag_trace) that sets C(nftrace) on exactly the given packets (source, destination, protocol,
    destination port; for TCP only the SYN) at the prerouting hook before conntrack and NAT, plus two empty
    base chains at the end of the input and forward hooks that show how far a packet got; then it starts
    C(nft -a monitor trace) under a detached watchdog and returns. Send the packets (for example with
    M(netdiag.reachability.probe) from their source) and call the module again with O(state=absent).
  - With O(state=absent) it stops the monitor, removes the table, checks that it is gone, and returns one
    record per traced packet - every rule and policy it met, the rule that dropped it, and whether it reached
    the input or forward hook (RV(traces)).
  - The table never outlives O(timeout) seconds - the watchdog removes it by itself when the window ends, also
    when the controller is interrupted between the two calls. O(state=present) replaces what a dead run left, but
    refuses while another run's trace is active (its watchdog lives), unless O(force). O(state=absent) with the
    RV(run) that O(state=present) returned touches nothing of another run's trace, and says RV(replaced).
  - Only rules in nf_tables are seen (nftables, iptables-nft, firewalld's nftables backend). Rules loaded with
    iptables-legacy are invisible to the trace; RV(legacy_rules) says when such rules exist.
author:
  - netdiag.reachability developers (@netdiag)
options:
  state:
    description:
      - V(present) adds the trace table and starts the monitor; V(absent) stops it, removes the table and returns
        what was traced.
    type: str
    choices: [present, absent]
    default: present
  packets:
    description:
      - The packets to trace; required with O(state=present). At most 256.
    type: list
    elements: dict
    suboptions:
      src:
        description: Source address of the packet.
        type: str
        required: true
      dst:
        description: Destination address (before any DNAT).
        type: str
        required: true
      protocol:
        description: Protocol.
        type: str
        choices: [tcp, udp]
        default: tcp
      port:
        description: Destination port (1-65535).
        type: int
        required: true
  timeout:
    description: Seconds the trace table may stay (5-3600); the watchdog removes it then at the latest.
    type: float
    default: 60
  grace:
    description: With O(state=absent), seconds to wait for the last trace events before the monitor stops.
    type: float
    default: 1.0
  run:
    description:
      - With O(state=absent), the RV(run) that O(state=present) returned. When the trace in place belongs to another
        run (this one was replaced with O(force), or stopped by someone else), nothing is stopped or removed, no
        trace is returned and RV(replaced) is true. Without it, whatever trace is in place is stopped.
    type: str
  force:
    description: With O(state=present), replace another run's trace that is still active.
    type: bool
    default: false
extends_documentation_fragment:
  - netdiag.reachability.attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is added or removed; the result says what would be.
  diff_mode:
    support: none
  platform:
    platforms: linux
    details: Linux with nf_tables and the C(nft) command, as root.
notes:
  - This changes the ruleset for the seconds of the trace (a table of its own that accepts everything and only
    marks packets), so it reports C(changed=true). The diagnosis runs it only with C(reachability_kernel_trace=true),
    never in check mode.
  - One trace per network namespace at a time.
seealso:
  - module: netdiag.reachability.probe
  - module: netdiag.reachability.firewall_info
"""

EXAMPLES = r"""
- name: Start tracing the probe's packets on the destination
  netdiag.reachability.kernel_trace:
    packets:
      - {src: 10.200.1.10, dst: 10.200.2.20, protocol: tcp, port: 8080}
    timeout: 60

- name: Probe again from the source
  netdiag.reachability.probe:
    targets: [{host: 10.200.2.20, ports: [8080]}]
  delegate_to: client

- name: Stop and read what the kernel saw
  netdiag.reachability.kernel_trace:
    state: absent
  register: kt

- name: Show the rule that dropped it
  ansible.builtin.debug:
    msg: "{{ kt.traces | map(attribute='decided_by') | list }}"
"""

RETURN = r"""
table:
  description: The trace table (O(state=present)).
  returned: state is present
  type: str
  sample: inet netdiag_trace
packets:
  description: The packets being traced, normalized (O(state=present)).
  returned: state is present
  type: list
  elements: dict
  sample: [{src: 10.200.1.10, dst: 10.200.2.20, protocol: tcp, port: 8080}]
expires_in:
  description: Seconds after which the watchdog removes the table by itself.
  returned: state is present
  type: float
  sample: 60.0
replaced_stale:
  description: True when a table or watchdog of an earlier trace was still there and was replaced.
  returned: state is present
  type: bool
  sample: false
run:
  description: This trace's name, for O(run) of the O(state=absent) call.
  returned: state is present
  type: str
  sample: 5f0c2a7d9e11
replaced:
  description: With O(run), true when the trace in place was another run's, so nothing was touched or returned.
  returned: state is absent
  type: bool
  sample: false
legacy_rules:
  description: True when iptables-legacy holds rules, which the trace cannot see.
  returned: always
  type: bool
  sample: false
traces:
  description: One record per traced packet, in order of first sight (O(state=absent)).
  returned: state is absent
  type: list
  elements: dict
  contains:
    src:
      description: Source address.
      type: str
      sample: 10.200.1.10
    dst:
      description: Destination address as the packet arrived (before DNAT).
      type: str
      sample: 10.200.2.20
    protocol:
      description: tcp or udp.
      type: str
      sample: tcp
    port:
      description: Destination port as the packet arrived.
      type: int
      sample: 8080
    iif:
      description: Interface the packet arrived on.
      type: str
      sample: eth0
    verdict:
      description: C(drop) when a rule or chain policy dropped it (a reject is a drop that answers), else C(accept).
      type: str
      sample: drop
    decided_by:
      description: The event that dropped it - C(family), C(table), C(chain), C(kind) (C(rule) or C(policy)),
        C(handle) and C(text) as the kernel printed them, and C(position), the rule's 1-based place in its chain;
        null when nothing dropped it.
      type: dict
      sample: {family: inet, table: filter, chain: input, kind: rule, handle: 3, text: tcp dport 8080 drop}
    reached:
      description: How far it got - C(input) (passed every input rule, delivered to the host), C(forward) (passed
        every forward rule, routed on), or null (neither - dropped by a rule, or, when nothing dropped it,
        discarded by the routing decision, e.g. C(rp_filter) or forwarding disabled).
      type: str
      sample: input
    events:
      description: Every rule, policy and verdict the packet met outside the trace table, in order.
      type: list
      elements: dict
neighbours:
  description:
    - The host's neighbour table entries (C(ip -j neigh show)) for the destinations of packets it forwarded, read
      right after the trace - on a router, C(FAILED) or C(INCOMPLETE) for an address on its own subnet means no host
      answers there.
  returned: state is absent
  type: list
  elements: dict
  sample: [{address: 10.200.2.99, dev: eth1, state: FAILED}]
removed:
  description: True when the trace table is gone (always checked after O(state=absent)).
  returned: state is absent
  type: bool
  sample: true
window_expired:
  description: True when the window had ended before O(state=absent) came, so the table was already removed
    by the watchdog and later packets were not traced.
  returned: state is absent
  type: bool
  sample: false
"""

from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import kernel_trace as kt


def _kernel_trace(module):
    p = module.params
    legacy = kt.legacy_rules_present()
    if p["state"] == "present":
        if not p["packets"]:
            module.fail_json(msg="packets is required with state=present")
        packets = kt.normalize_packets(p["packets"])
        if module.check_mode:
            return {"changed": True, "table": "%s %s" % (kt.FAMILY, kt.TABLE), "packets": packets,
                    "expires_in": float(p["timeout"]), "run": "", "replaced_stale": False, "legacy_rules": legacy}
        result = kt.arm(packets, timeout=p["timeout"], force=p["force"])
        result.update(changed=True, legacy_rules=legacy)
        return result
    if module.check_mode:
        present = kt.table_present()
        return {"changed": present, "traces": [], "removed": not present, "window_expired": False,
                "replaced": False, "legacy_rules": legacy}
    result = kt.collect(grace=p["grace"], run=p["run"])
    changed = bool(result.pop("removed_by_collect"))
    result.pop("armed", None)
    result.update(changed=changed, legacy_rules=legacy)
    return result


def main():
    run_module(dict(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        packets=dict(type="list", elements="dict", options=dict(
            src=dict(type="str", required=True),
            dst=dict(type="str", required=True),
            protocol=dict(type="str", default="tcp", choices=["tcp", "udp"]),
            port=dict(type="int", required=True),
        )),
        timeout=dict(type="float", default=60.0),
        grace=dict(type="float", default=1.0),
        run=dict(type="str"),
        force=dict(type="bool", default=False),
    ), _kernel_trace)


if __name__ == "__main__":
    main()
