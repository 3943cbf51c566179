#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: probe
short_description: Probe TCP/UDP ports and ICMP echo from this host and say why they answer as they do
version_added: "0.1.0"
description:
  - Probes a list of targets (address or name, ports, protocol) from the host the module runs on.
    Use C(delegate_to) to choose the source host.
  - Classifies every probe with nmap's semantics (V(open), V(closed), V(filtered), V(open|filtered),
    V(unreachable)) and keeps the evidence - reply kind, ICMP type/code and name, who sent the reply
    (the target or a hop), the reply TTL, the round-trip time and the retries used.
  - As root it uses raw sockets (engine V(raw), IPv4) - TCP SYNs, UDP datagrams, ICMP echo; ICMP errors
    are matched to probes through the header they quote. Without root it uses C(connect()) and UDP
    sockets with C(IP_RECVERR) (engine V(connect)), which still yields the exact ICMP type, code,
    sender and TTL. Only the raw engine sees the TTL of a SYN-ACK or RST.
  - Aware of ICMP rate limiting (Linux sends a burst of 6 errors, then one per second to each
    destination). Silent ports of a target that sent ICMP errors are re-probed after a pause; those
    that still cannot be told apart from a silent drop are returned with RV(results[].rate_limited=true).
  - Read-only - never changes anything; RV(ignore:changed) is always false.
author:
  - netdiag.reachability developers (@netdiag)
options:
  targets:
    description:
      - What to probe - a list of hosts, each with its ports and protocol.
    type: list
    elements: dict
    required: true
    suboptions:
      host:
        description: Address or name of the target. Names are resolved once on the source host.
        type: str
        required: true
        aliases: [address]
      ports:
        description:
          - Ports to probe, as numbers, ranges (V(8000-8010)) or specs with a protocol (V(53/udp))
            that override O(targets[].protocol). Required for tcp and udp; not allowed for icmp.
        type: list
        elements: raw
        aliases: [port]
      protocol:
        description: Protocol of the probes.
        type: str
        choices: [tcp, udp, icmp]
        default: tcp
        aliases: [proto]
  engine:
    description:
      - V(raw) needs root (or CAP_NET_RAW); V(connect) works for any user; V(auto) picks V(raw) when
        raw sockets can be opened. IPv6 targets always use V(connect).
    type: str
    choices: [auto, raw, connect]
    default: auto
  family:
    description: Address family to use when a name resolves to both.
    type: str
    choices: [auto, ipv4, ipv6]
    default: auto
  timeout:
    description:
      - Seconds to wait for a reply to one attempt. Once replies are seen from a target the wait
        shrinks towards a multiple of the measured round-trip time, never above this value.
    type: float
    default: 1.0
  retries:
    description: How many times a probe that got no reply is sent again.
    type: int
    default: 1
  rate:
    description: Maximum probes sent per second, all targets together.
    type: float
    default: 2000
  parallelism:
    description: Maximum probes in flight at once (the connect engine is also bounded by the open files limit).
    type: int
    default: 256
  max_probes:
    description: Maximum number of probes (targets x ports) in one call; more is an error.
    type: int
    default: 10000
  rate_limit_interval:
    description:
      - Seconds the target needs to earn one ICMP error token again (Linux C(net.ipv4.icmp_ratelimit),
        1000 ms by default). Used to pace re-probes of possibly rate-limited ports.
    type: float
    default: 1.0
  rate_limit_budget:
    description:
      - Seconds spent at most re-probing silent ports of targets that sent ICMP errors. V(0) disables
        the re-probes (the silent ports are then marked RV(results[].rate_limited)).
    type: float
    default: 2.0
  unreachable_wait:
    description:
      - Seconds after its first send a silent probe still takes a late reply (raw engine). A router
        that cannot find an absent host on its own subnet answers ICMP host-unreachable only when
        neighbour discovery gives up, about 3 s after the first packet on Linux, later than O(timeout).
        The wait is spent once per call and only when some probe is silent; V(0) disables it.
    type: float
    default: 3.5
  app_check:
    description:
      - "For open TCP ports, also check the application: V(banner) reads what the server says first,
        V(http) sends C(HEAD / HTTP/1.0) and reads the status line. Result in RV(results[].app)."
    type: str
    choices: [none, banner, http]
    default: none
  app_timeout:
    description: Seconds to wait for the application check's connect and first data.
    type: float
    default: 2.0
extends_documentation_fragment:
  - netdiag.reachability.attributes.info_module
attributes:
  platform:
    platforms: linux
    details: Linux (C(IP_RECVERR), raw sockets).
notes:
  - ICMP echo with the V(connect) engine needs C(net.ipv4.ping_group_range) to include the user's group.
  - Probes only the addresses it is given, from the host it runs on; it sends SYNs, datagrams and echo
    requests, paced by O(rate). Ask before probing networks you do not run.
seealso:
  - name: nmap port states
    description: The states and reasons this module mirrors.
    link: https://nmap.org/book/man-port-scanning-basics.html
"""

EXAMPLES = r"""
- name: Why can't the web tier reach the database?
  netdiag.reachability.probe:
    targets:
      - host: db1.example.com
        ports: [5432, 6432]
      - host: 10.0.5.20
        ports: ["53/udp", "53/tcp"]
  delegate_to: web1
  register: probe

- name: Show only what is not open
  ansible.builtin.debug:
    msg: "{{ probe.results | rejectattr('state', 'eq', 'open') | list }}"

- name: Check a port range without root, and that the HTTP service answers
  netdiag.reachability.probe:
    engine: connect
    app_check: http
    targets:
      - host: 10.200.2.10
        ports: ["80", "8000-8010"]
  become: false

- name: Ping a host
  netdiag.reachability.probe:
    targets:
      - host: 10.200.2.10
        protocol: icmp
"""

RETURN = r"""
engine:
  description: The engine that ran (V(raw) or V(connect)); IPv6 probes always say V(connect) in RV(results[].engine).
  returned: always
  type: str
  sample: raw
engine_reason:
  description: Why this engine was chosen, and what it cannot see.
  returned: always
  type: str
  sample: raw sockets available
notes:
  description: Anything that differed from what was asked (e.g. IPv6 probes with the connect engine).
  returned: always
  type: list
  elements: str
  sample: []
elapsed_s:
  description: Wall time of the probe, seconds.
  returned: always
  type: float
  sample: 1.204
summary:
  description: Number of probes per state, and how many are marked rate_limited.
  returned: always
  type: dict
  sample: {"open": 1, "closed": 1, "filtered": 3, "open|filtered": 0, "unreachable": 0, "rate_limited": 0}
results:
  description: One entry per probe, in the order of the targets and ports given.
  returned: always
  type: list
  elements: dict
  contains:
    target:
      description: The host as given.
      type: str
      returned: always
      sample: db1.example.com
    address:
      description: The address probed.
      type: str
      returned: always
      sample: 10.200.2.11
    family:
      description: V(ipv4) or V(ipv6).
      type: str
      returned: always
      sample: ipv4
    port:
      description: Port probed; null for icmp.
      type: int
      returned: always
      sample: 80
    protocol:
      description: V(tcp), V(udp) or V(icmp).
      type: str
      returned: always
      sample: tcp
    state:
      description:
        - V(open) (SYN-ACK, UDP reply, echo reply); V(closed) (RST, or ICMP port-unreachable from the
          target for UDP); V(filtered) (an ICMP unreachable that is not "host/net gone", or no reply to
          TCP); V(open|filtered) (no reply to UDP); V(unreachable) (net/host unreachable, time exceeded,
          no route).
      type: str
      returned: always
      sample: filtered
    reason:
      description: nmap's reason name, e.g. V(syn-ack), V(reset), V(udp-response), V(port-unreach),
        V(host-prohibited), V(admin-prohibited), V(host-unreach), V(no-response), V(echo-reply).
      type: str
      returned: always
      sample: admin-prohibited
    reply:
      description: What came back; null when nothing did.
      type: dict
      returned: always
      sample: {"kind": "icmp", "icmp_type": 3, "icmp_code": 13,
               "icmp_name": "destination-unreachable/admin-prohibited",
               "sender": "10.200.1.1", "sender_is_target": false, "ttl": 64}
      contains:
        kind:
          description: V(syn-ack), V(rst), V(udp), V(echo-reply) or V(icmp) (an ICMP error).
          type: str
          returned: when a reply came
          sample: icmp
        icmp_type:
          description: ICMP type; null for non-ICMP replies.
          type: int
          returned: when a reply came
          sample: 3
        icmp_code:
          description: ICMP code; null for non-ICMP replies.
          type: int
          returned: when a reply came
          sample: 13
        icmp_name:
          description: Name of the ICMP type and code.
          type: str
          returned: when a reply came
          sample: destination-unreachable/admin-prohibited
        sender:
          description: Who sent the reply; V(local) when this host refused to send (no route, local firewall).
          type: str
          returned: when a reply came
          sample: 10.200.1.1
        sender_is_target:
          description: Whether the reply came from the target itself rather than a hop.
          type: bool
          returned: when a reply came
          sample: false
        ttl:
          description: IP TTL of the reply as received; null when the engine cannot see it
            (SYN-ACK/RST with the connect engine).
          type: int
          returned: when a reply came
          sample: 64
        local_errno:
          description:
            - When RV(results[].reply.sender) is V(local), the error this host's own stack gave the send
              (V(EPERM) or V(EACCES)- an output firewall rule; V(ENETUNREACH) or V(EHOSTUNREACH)- no route).
              The ICMP type and code stand for it; no packet left the host.
          type: str
          returned: when the sender is local
          sample: EPERM
        neighbour:
          description:
            - For an address on one of this host's own links, the state of its neighbour entry (ARP, NDP) when
              the kernel could not resolve it (V(FAILED) or V(INCOMPLETE)) - nothing answered at that address on
              the link. A silent probe to such an address is sent once more (the raw engine) before it is
              reported so, with RV(results[].reply.local_errno) V(EHOSTUNREACH); off-link addresses have no entry.
          type: str
          returned: when the neighbour entry of the address did not resolve
          sample: FAILED
        neighbour_dev:
          description: The interface of that neighbour entry.
          type: str
          returned: with RV(results[].reply.neighbour)
          sample: eth0
    rtt_ms:
      description: Round-trip time of the attempt that was answered, milliseconds; null without reply.
      type: float
      returned: always
      sample: 0.412
    retries:
      description: Re-sends used (0 when the first attempt was answered).
      type: int
      returned: always
      sample: 0
    rate_limited:
      description: True when the probe got no reply but its target was sending ICMP errors that the
        target's rate limit may have suppressed, and re-probing within O(rate_limit_budget) could not
        tell a reject from a drop. Treat as "rejected or dropped".
      type: bool
      returned: always
      sample: false
    local_discards:
      description:
        - On a result with no reply, how many of its own packets this host discarded on output while it probed
          (C(Ip OutDiscards) and C(Ip6OutDiscards) grew by that much) - a full neighbour table (C(dmesg) says
          C(neighbor table overflow)) or a full queue. Such a silence may be this host's, not the network's.
      type: int
      returned: when the host discarded packets during the probe and the result got no reply
      sample: 295
    engine:
      description: Engine that sent this probe.
      type: str
      returned: always
      sample: raw
    app:
      description: Result of the application check on an open TCP port.
      type: dict
      returned: when O(app_check) is not V(none) and the port is open
      sample: {"check": "http", "answered": true, "data": "HTTP/1.0 200 OK", "error": null, "rtt_ms": 1.9}
      contains:
        check:
          description: V(banner) or V(http).
          type: str
          returned: always
          sample: http
        answered:
          description: Whether the service sent any data.
          type: bool
          returned: always
          sample: true
        data:
          description: First line the service sent (at most 200 characters).
          type: str
          returned: always
          sample: HTTP/1.0 200 OK
        error:
          description: Why the check got no data (timeout, connection closed, refused).
          type: str
          returned: always
          sample: null
        rtt_ms:
          description: Time from connect to first data, milliseconds.
          type: float
          returned: always
          sample: 1.9
"""

from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.probe.run import probe as run_probe


def _probe(module):
    params = dict(module.params)
    targets = params.pop("targets")
    return run_probe(targets, **params)


def main():
    run_module(dict(
        targets=dict(type="list", elements="dict", required=True, options=dict(
            host=dict(type="str", required=True, aliases=["address"]),
            ports=dict(type="list", elements="raw", aliases=["port"]),
            protocol=dict(type="str", default="tcp", choices=["tcp", "udp", "icmp"], aliases=["proto"]),
        )),
        engine=dict(type="str", default="auto", choices=["auto", "raw", "connect"]),
        family=dict(type="str", default="auto", choices=["auto", "ipv4", "ipv6"]),
        timeout=dict(type="float", default=1.0),
        retries=dict(type="int", default=1),
        rate=dict(type="float", default=2000),
        parallelism=dict(type="int", default=256),
        max_probes=dict(type="int", default=10000),
        rate_limit_interval=dict(type="float", default=1.0),
        rate_limit_budget=dict(type="float", default=2.0),
        unreachable_wait=dict(type="float", default=3.5),
        app_check=dict(type="str", default="none", choices=["none", "banner", "http"]),
        app_timeout=dict(type="float", default=2.0),
    ), _probe)


if __name__ == "__main__":
    main()
