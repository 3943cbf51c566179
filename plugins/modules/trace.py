#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: trace
short_description: Find the hop where packets to a port die or are rejected (traceroute -T, with a verdict)
version_added: 0.1.0
description:
  - Sends TCP SYN (default), UDP or ICMP echo probes to O(address) with rising TTL from the host the task runs
    on (pick the source with C(delegate_to)), and reports each hop and the verdict - the port was reached
    (open or closed), a hop or the target rejected the packets (ICMP type, code and sender), or the packets
    die silently after the last hop that answered.
  - Uses one socket per TTL with C(IP_RECVERR), so it needs no raw sockets and runs as any user; an ICMP trace
    needs a ping socket (C(net.ipv4.ping_group_range)) or root.
  - TTLs are sent in small waves because routers rate-limit the ICMP errors they send to one source.
  - A TCP probe that reaches an open port completes a real handshake, which is closed at once.
  - Path MTU discovery is not implemented.
author:
  - netdiag.reachability developers (@netdiag)
options:
  address:
    description: Destination address or name.
    type: str
    required: true
  port:
    description: Destination port; required for C(tcp) and C(udp).
    type: int
  protocol:
    description: Probe protocol.
    type: str
    choices: [tcp, udp, icmp]
    default: tcp
  max_hops:
    description: Highest TTL probed (1-64).
    type: int
    default: 30
  first_hop:
    description: Lowest TTL probed.
    type: int
    default: 1
  timeout:
    description: Seconds to wait for the answers to one wave of probes.
    type: float
    default: 2.0
  wave_size:
    description: How many TTLs are probed at once.
    type: int
    default: 3
  max_silent_hops:
    description: Stop after this many silent TTLs in a row.
    type: int
    default: 6
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is no diff.
notes:
  - Read-only; always returns C(changed=false).
"""

EXAMPLES = r"""
- name: Where do packets from web01 to db01:5432 die?
  netdiag.reachability.trace:
    address: 10.0.2.15
    port: 5432
  delegate_to: web01
  register: path

- name: Show the hop that blocks
  ansible.builtin.debug:
    msg: "{{ path.reason }}"
"""

RETURN = r"""
address:
  description: The destination address probed (resolved).
  type: str
  returned: always
  sample: 10.200.2.10
family:
  description: Address family, C(ipv4) or C(ipv6).
  type: str
  returned: always
  sample: ipv4
protocol:
  description: Probe protocol.
  type: str
  returned: always
  sample: tcp
port:
  description: Destination port (null for ICMP).
  type: int
  returned: always
  sample: 8082
verdict:
  description:
    - C(reached) - the target answered (see RV(state)); C(rejected) - an ICMP error other than time-exceeded
      came back (see RV(blocking_hop)); C(silent_after_hop) - nothing answered beyond the last responding hop;
      C(silent) - nothing answered at all.
  type: str
  returned: always
  sample: rejected
state:
  description: C(open) or C(closed) when RV(verdict) is C(reached), else null.
  type: str
  returned: always
  sample: null
reached:
  description: Whether the probes reached the target host (a reject sent by the target counts).
  type: bool
  returned: always
  sample: false
reason:
  description: The verdict in one sentence.
  type: str
  returned: always
  sample: 10.200.2.10:8082/tcp rejected by router 10.200.1.1 (hop 1) with ICMP 3/13 (destination-unreachable/admin-prohibited)
destination_ttl:
  description: The TTL of the probe that got the final answer, null when none did.
  type: int
  returned: always
  sample: 2
blocking_hop:
  description: The hop that rejects (C(how) is the ICMP name) or after which packets vanish (C(how) is C(silence)).
  type: dict
  returned: always (null when the target was reached)
  contains:
    ttl:
      description: Position of the hop on the path (the first TTL it answered).
      type: int
      sample: 1
    address:
      description: Address of the hop.
      type: str
      sample: 10.200.1.1
    how:
      description: C(silence) or the ICMP name of the reject.
      type: str
      sample: destination-unreachable/admin-prohibited
    is_target:
      description: For a reject, whether the target itself sent it.
      type: bool
      sample: false
    probe_ttl:
      description: For a reject, the TTL of the probe that was rejected.
      type: int
      sample: 2
last_responding_hop:
  description: The last hop that answered anything (C(ttl), C(address)), null when none did.
  type: dict
  returned: always
  sample: {"ttl": 1, "address": "10.200.1.1"}
hops:
  description: One entry per TTL probed, in order, up to the final answer.
  type: list
  elements: dict
  returned: always
  contains:
    ttl:
      description: TTL of the probe.
      type: int
      sample: 1
    address:
      description: Who answered (null for no answer).
      type: str
      sample: 10.200.1.1
    reply:
      description: C(time-exceeded), C(icmp) (another ICMP error), C(syn-ack), C(rst), C(udp), C(echo-reply), or null.
      type: str
      sample: time-exceeded
    icmp_type:
      description: ICMP type of an ICMP answer.
      type: int
      sample: 11
    icmp_code:
      description: ICMP code of an ICMP answer.
      type: int
      sample: 0
    icmp_name:
      description: Name of the ICMP type and code.
      type: str
      sample: time-exceeded/code-0
    rtt_ms:
      description: Round-trip time in milliseconds.
      type: float
      sample: 0.41
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netdiag.reachability.plugins.module_utils.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils.trace import trace


def main():
    module = AnsibleModule(
        argument_spec=dict(
            address=dict(type="str", required=True),
            port=dict(type="int"),
            protocol=dict(type="str", default="tcp", choices=["tcp", "udp", "icmp"]),
            max_hops=dict(type="int", default=30),
            first_hop=dict(type="int", default=1),
            timeout=dict(type="float", default=2.0),
            wave_size=dict(type="int", default=3),
            max_silent_hops=dict(type="int", default=6),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = trace(p["address"], port=p["port"], protocol=p["protocol"], max_hops=p["max_hops"],
                       timeout=p["timeout"], first_hop=p["first_hop"], wave_size=p["wave_size"],
                       max_silent_hops=p["max_silent_hops"])
    except NetdiagError as exc:
        module.fail_json(msg=str(exc))
    result.pop("target", None)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
