#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

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
  - With O(targets), one call traces every flow of the source at once - the TTL waves of all targets are in flight
    together (paced by O(rate), at most O(parallelism) probes), so the waits overlap and silent paths cost about one
    trace, not one each. Each target gets the result a single trace would give, in RV(results). Routers near the
    source rate-limit the ICMP errors they send it (Linux - a burst of 6, then one per second); when one may have run
    out during a wave, the silent TTLs it could have answered are probed again once it has a token, within
    O(rate_limit_budget).
  - With O(mtu=true) it also measures the path MTU - UDP datagrams with the DF bit set, shrunk to the MTU
    a router reports with ICMP "fragmentation needed" (ICMPv6 "packet too big"), confirmed by the
    destination's answer; sizes that vanish without any ICMP error are searched to bound a PMTU black hole.
author:
  - netdiag.reachability developers (@netdiag)
options:
  address:
    description:
      - Destination address or name.
      - One of O(address) and O(targets) is required.
    type: str
  port:
    description: Destination port; required for C(tcp) and C(udp) (with O(targets), the default of each target's port).
    type: int
  protocol:
    description: Probe protocol (with O(targets), the default of each target's protocol).
    type: str
    choices: [tcp, udp, icmp]
    default: tcp
  targets:
    description:
      - Trace all these destinations at once instead of O(address); the results are in RV(results), in this order.
      - A name that does not resolve, or an ICMP target this host cannot send ICMP echo to, gives that target
        C(verdict=null) and an C(error); the others are traced. At most 1024 targets.
    type: list
    elements: dict
    suboptions:
      address:
        description: Destination address or name.
        type: str
        required: true
        aliases: [host]
      port:
        description: Destination port; required for C(tcp) and C(udp).
        type: int
      protocol:
        description: Probe protocol.
        type: str
        choices: [tcp, udp, icmp]
        aliases: [proto]
  rate:
    description: With O(targets), at most this many probes sent per second.
    type: float
    default: 1000
  parallelism:
    description: With O(targets), at most this many probes in flight (one socket each).
    type: int
    default: 256
  rate_limit_interval:
    description:
      - Seconds a router needs to earn one ICMP error token again (Linux C(net.ipv4.icmp_ratelimit), 1000 ms by
        default). Paces the second probes of TTLs a rate-limited router may have left unanswered.
    type: float
    default: 1.0
  rate_limit_budget:
    description:
      - Seconds at most spent probing such TTLs again; those still in doubt are returned silent with C(rate_limited=true).
    type: float
    default: 10.0
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
    description:
      - How many TTLs are probed at once.
      - On a path that has been silent for some TTLs the next wave holds all the TTLs left before O(max_silent_hops)
        ends the trace, so a silent tail costs one more wait of O(timeout), not one per O(wave_size) TTLs.
    type: int
    default: 3
  max_silent_hops:
    description: Stop after this many silent TTLs in a row.
    type: int
    default: 6
  mtu:
    description:
      - Also measure the path MTU (RV(path_mtu)). The UDP probes go to O(port) for a C(udp) trace, else to
        port 33434, where nothing listens and the destination answers ICMP port unreachable.
      - The host's kernel caches an MTU a router reports, as it does for any traffic (about 10 minutes).
    type: bool
    default: false
extends_documentation_fragment:
  - netdiag.reachability.attributes.info_module
attributes:
  platform:
    platforms: linux
    details: Linux (C(IP_RECVERR)).
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

- name: Trace every flow of one source at once
  netdiag.reachability.trace:
    targets:
      - {address: 10.0.2.15, port: 5432}
      - {address: 10.0.2.16, port: 53, protocol: udp}
      - {address: 10.0.3.1, protocol: icmp}
    max_hops: 16
    timeout: 1.0
  delegate_to: web01
  register: paths

- name: Show where each one dies
  ansible.builtin.debug:
    msg: "{{ paths.results | map(attribute='reason') | list }}"

- name: Big transfers hang but small requests work - measure the path MTU too
  netdiag.reachability.trace:
    address: 10.0.2.15
    port: 443
    mtu: true
  delegate_to: web01
  register: path

- name: Show the path MTU and who reported it
  ansible.builtin.debug:
    msg: "{{ path.path_mtu.reason }}"
"""

RETURN = r"""
results:
  description:
    - With O(targets), one entry per target, in order, each with the keys a single trace returns (RV(address),
      RV(verdict), RV(hops), ...) plus C(target), the address or name as given.
    - A target that could not be traced has C(verdict=null) and C(error).
    - A hop whose silence may be a router's ICMP rate limit (still in doubt after O(rate_limit_budget)) has
      C(rate_limited=true).
  type: list
  elements: dict
  returned: with O(targets)
  sample: [{"target": "10.200.2.10", "address": "10.200.2.10", "port": 8081, "protocol": "tcp", "verdict": "silent_after_hop"}]
elapsed_s:
  description: With O(targets), seconds the whole call took.
  type: float
  returned: with O(targets)
  sample: 3.1
reprobes:
  description: With O(targets), how many TTL probes were sent again because a router may have been rate-limiting.
  type: int
  returned: with O(targets)
  sample: 0
address:
  description: The destination address probed (resolved).
  type: str
  returned: with O(address)
  sample: 10.200.2.10
family:
  description: Address family, C(ipv4) or C(ipv6).
  type: str
  returned: with O(address)
  sample: ipv4
protocol:
  description: Probe protocol.
  type: str
  returned: with O(address)
  sample: tcp
port:
  description: Destination port (null for ICMP).
  type: int
  returned: with O(address)
  sample: 8082
verdict:
  description:
    - C(reached) - the target answered (see RV(state)); C(rejected) - an ICMP error other than time-exceeded
      came back (see RV(blocking_hop)); C(silent_after_hop) - nothing answered beyond the last responding hop;
      C(silent) - nothing answered at all.
  type: str
  returned: with O(address)
  sample: rejected
state:
  description: C(open) or C(closed) when RV(verdict) is C(reached), else null.
  type: str
  returned: with O(address)
  sample: null
reached:
  description: Whether the probes reached the target host (a reject sent by the target counts).
  type: bool
  returned: with O(address)
  sample: false
reason:
  description: The verdict in one sentence.
  type: str
  returned: with O(address)
  sample: 10.200.2.10:8082/tcp rejected by router 10.200.1.1 (hop 1) with ICMP 3/13 (destination-unreachable/admin-prohibited)
destination_ttl:
  description: The TTL of the probe that got the final answer, null when none did.
  type: int
  returned: with O(address)
  sample: 2
blocking_hop:
  description: The hop that rejects (C(how) is the ICMP name) or after which packets vanish (C(how) is C(silence)).
  type: dict
  returned: with O(address) (null when the target was reached)
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
  returned: with O(address)
  sample: {"ttl": 1, "address": "10.200.1.1"}
path_mtu:
  description: The path MTU, with O(mtu=true).
  type: dict
  returned: when O(mtu=true)
  contains:
    mtu:
      description: The largest packet (IP header included) that crosses the path, null when not known.
      type: int
      sample: 1400
    local_mtu:
      description: The MTU of the interface the route to the address uses.
      type: int
      sample: 1500
    verdict:
      description:
        - V(confirmed) (a packet of RV(path_mtu.mtu) bytes got an answer from the destination), V(black_hole)
          (it did, but larger packets vanish without an ICMP error), V(reported) (a router reported the MTU;
          nothing confirmed it end to end) or V(unknown).
      type: str
      sample: confirmed
    reason:
      description: The finding in one sentence.
      type: str
      sample: path MTU to 10.200.2.10 is 1400 bytes (reported by 10.200.1.1, 1400), confirmed by an answer from the destination
    reported_by:
      description: The routers that answered "fragmentation needed", with the MTU each reported.
      type: list
      elements: dict
      sample: [{"address": "10.200.1.1", "mtu": 1400}]
    udp_port:
      description: The UDP port the probes went to.
      type: int
      sample: 33434
    probes:
      description: Each probe - C(size), C(reply) (V(too-big), V(icmp), V(answer), V(local-too-big) or null), C(address), C(mtu), C(rtt_ms).
      type: list
      elements: dict
      sample: [{"size": 1500, "reply": "too-big", "address": "10.200.1.1", "mtu": 1400, "rtt_ms": 0.3}]
hops:
  description: One entry per TTL probed, in order, up to the final answer.
  type: list
  elements: dict
  returned: with O(address)
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

from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.probe.trace import trace, trace_many


def _trace(module):
    p = module.params
    common = dict(max_hops=p["max_hops"], timeout=p["timeout"], first_hop=p["first_hop"], wave_size=p["wave_size"],
                  max_silent_hops=p["max_silent_hops"], mtu=p["mtu"])
    if p["targets"] is not None:
        targets = [{"address": t["address"], "port": t["port"] if t["port"] is not None else p["port"],
                    "protocol": t["protocol"] or p["protocol"]} for t in p["targets"]]
        return trace_many(targets, rate=p["rate"], parallelism=p["parallelism"],
                          rate_limit_interval=p["rate_limit_interval"], rate_limit_budget=p["rate_limit_budget"], **common)
    result = trace(p["address"], port=p["port"], protocol=p["protocol"], **common)
    result.pop("target", None)
    return result


def main():
    run_module(dict(
        address=dict(type="str"),
        targets=dict(type="list", elements="dict", options=dict(
            address=dict(type="str", required=True, aliases=["host"]),
            port=dict(type="int"),
            protocol=dict(type="str", choices=["tcp", "udp", "icmp"], aliases=["proto"]),
        )),
        port=dict(type="int"),
        protocol=dict(type="str", default="tcp", choices=["tcp", "udp", "icmp"]),
        max_hops=dict(type="int", default=30),
        first_hop=dict(type="int", default=1),
        timeout=dict(type="float", default=2.0),
        wave_size=dict(type="int", default=3),
        max_silent_hops=dict(type="int", default=6),
        mtu=dict(type="bool", default=False),
        rate=dict(type="float", default=1000),
        parallelism=dict(type="int", default=256),
        rate_limit_interval=dict(type="float", default=1.0),
        rate_limit_budget=dict(type="float", default=10.0),
    ), _trace, mutually_exclusive=[["address", "targets"]], required_one_of=[["address", "targets"]])


if __name__ == "__main__":
    main()
