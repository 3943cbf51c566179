#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: pcap_info
short_description: Explain a packet capture - ICMP unreachables matched to their flows, resets, unanswered SYNs
version_added: 0.1.0
description:
  - Reads a pcap or pcapng file (optionally gzip-compressed) on the host the task runs on, and explains what
    it shows the way the M(netdiag.reachability.probe) module would have seen it.
  - Groups packets into flows by the initiator's 5-tuple (the sender of the first TCP SYN, of the first UDP
    datagram, or of an ICMP echo request) and gives each flow a verdict in the probe's vocabulary - RV(flows[].state)
    C(open), C(closed), C(filtered), C(open|filtered) or C(unreachable), and RV(flows[].reason) such as C(syn-ack),
    C(reset), C(port-unreach), C(host-prohibited), C(admin-prohibited), C(udp-response), C(no-response).
    The first answer decides, as it does for a probe.
  - Lists every ICMP destination-unreachable (IPv4 type 3, IPv6 type 1) and time-exceeded error with its code
    name, who sent it, and the original flow read from the header the error quotes - so a capture showing
    C(Destination unreachable (Host administratively prohibited)) names the connection it killed and whether the
    target or a router in between sent it.
  - Lists TCP connection attempts whose SYNs got no answer at all, and every TCP reset.
  - Decodes Ethernet (with VLAN tags), Linux cooked (C(tcpdump -i any), v1 and v2), raw IP and BSD loopback
    captures, IPv4 and IPv6.  Needs nothing but Python on the target (the file formats are read by the
    collection's own reader, not scapy, so a truncated file is reported as such).
  - A file that is not a capture, or that ends in the middle of a packet, fails with a message naming the file,
    the packet and the byte offset.
author:
  - netdiag.reachability developers (@netdiag)
options:
  path:
    description: Path of the capture file on the target host (pcap, pcapng, or either compressed with gzip).
    type: path
    required: true
  max_packets:
    description:
      - Read at most this many packets; the rest of the file is not read and RV(max_packets_reached) says so.
    type: int
    default: 1000000
  host:
    description:
      - Only report flows with this IPv4 or IPv6 address on either side (and the ICMP errors and resets about
        them, or ICMP errors sent by this address).  The analysis still sees every packet.
    type: str
  port:
    description: Only report flows with this port on either side (and the ICMP errors and resets about them).
    type: int
  allow_truncated:
    description:
      - When the file ends in the middle of a packet (a capture copied while C(tcpdump) was still writing),
        explain the packets before the cut, set RV(truncated) and add a note, instead of failing.
    type: bool
    default: false
extends_documentation_fragment:
  - netdiag.reachability.attributes.info_module
attributes:
  platform:
    platforms: posix
    details: Any POSIX host with Python; only the standard library is used.
notes:
  - Read-only; always returns C(changed=false).
  - A TCP connection whose SYN is not in the capture (the capture started later) is not a flow; its packets are
    counted in RV(packets) only, and its resets are listed with RV(resets[].flow) null.
  - An ICMP error whose quoted packet is not in the capture still makes a flow, known only from the quote
    (RV(flows[].packets_out) is 0, RV(icmp_errors[].matched) is false).
seealso:
  - module: netdiag.reachability.probe
  - module: netdiag.reachability.trace
"""

EXAMPLES = r"""
# On the client: tcpdump -i eth0 -w /tmp/web.pcap 'host 10.0.2.15' while the connection fails
- name: Explain the capture
  netdiag.reachability.pcap_info:
    path: /tmp/web.pcap
    port: 80
  register: cap

- name: Which connections were rejected, and by whom?
  ansible.builtin.debug:
    msg: "{{ item.flow.dst }}:{{ item.flow.dport }} {{ item.name }} sent by {{ item.sender }}"
  loop: "{{ cap.icmp_errors }}"

- name: Fail when SYNs went unanswered (a drop rule somewhere)
  ansible.builtin.assert:
    that: cap.unanswered_syns | length == 0
"""

RETURN = r"""
format:
  description: C(pcap) or C(pcapng), with C(+gzip) when the file was compressed.
  type: str
  returned: always
  sample: pcap
link_types:
  description: Link-layer types of the packets read (C(EN10MB), C(LINUX_SLL), C(LINUX_SLL2), C(RAW), C(NULL), C(LOOP), ...).
  type: list
  elements: str
  returned: always
  sample: [EN10MB]
packets:
  description: Number of packets read from the file.
  type: int
  returned: always
  sample: 36
truncated:
  description: The file ended in the middle of a packet and O(allow_truncated) was set (see RV(notes)).
  type: bool
  returned: always
  sample: false
max_packets_reached:
  description: The file holds more than O(max_packets) packets; only the first O(max_packets) were read.
  type: bool
  returned: always
  sample: false
flows:
  description: One entry per flow, in the order the flows started.
  type: list
  elements: dict
  returned: always
  contains:
    protocol:
      description: C(tcp), C(udp) or C(icmp) (echo).
      type: str
      sample: tcp
    family:
      description: C(ipv4) or C(ipv6).
      type: str
      sample: ipv4
    src:
      description: Address of the initiator.
      type: str
      sample: 10.200.1.10
    sport:
      description: Port of the initiator (null for ICMP).
      type: int
      sample: 47014
    dst:
      description: Address the initiator tried to reach (the target).
      type: str
      sample: 10.200.2.15
    dport:
      description: Port the initiator tried to reach (null for ICMP).
      type: int
      sample: 80
    icmp_id:
      description: The echo identifier of an ICMP flow, else null.
      type: int
      sample: null
    state:
      description: C(open), C(closed), C(filtered), C(open|filtered) or C(unreachable), as M(netdiag.reachability.probe) classifies.
      type: str
      sample: filtered
    reason:
      description: What the state rests on, in the probe's reason names (C(syn-ack), C(reset), C(udp-response),
        C(echo-reply), C(no-response), or the ICMP reason such as C(port-unreach), C(host-prohibited),
        C(admin-prohibited), C(time-exceeded)).
      type: str
      sample: host-prohibited
    first_seen:
      description: Time of the flow's first packet (seconds since the epoch).
      type: float
      sample: 1795320986.702202
    last_seen:
      description: Time of the flow's last packet (seconds since the epoch).
      type: float
      sample: 1795320986.702237
    rtt_ms:
      description: Milliseconds from the flow's first packet to its first answer, null without an answer.
      type: float
      sample: 0.035
    packets:
      description: Packets of the flow in both directions, ICMP errors included.
      type: int
      sample: 2
    packets_out:
      description: Packets from the initiator.
      type: int
      sample: 1
    packets_in:
      description: Packets from the target (ICMP errors not included).
      type: int
      sample: 0
    syns:
      description: TCP SYNs the initiator sent (retransmissions included); null for UDP and ICMP.
      type: int
      sample: 1
    replies:
      description:
        - The answers, in order (at most 10) - SYN-ACKs and RSTs from the target, UDP datagrams, echo replies and
          ICMP errors.  Each has C(kind) (C(syn-ack), C(rst), C(udp), C(echo-reply), C(icmp)), C(time),
          C(sender), C(ttl); ICMP ones also C(type), C(code), C(name), C(reason), C(sender_is_target).
      type: list
      elements: dict
      sample: [{"kind": "icmp", "time": 1795320986.702237, "type": 3, "code": 10, "name": "destination-unreachable/host-prohibited",
                "reason": "host-prohibited", "sender": "10.200.2.15", "sender_is_target": true, "ttl": 63}]
    icmp:
      description: The first ICMP error about this flow, null when there was none.
      type: dict
      contains:
        type:
          description: ICMP type.
          type: int
          sample: 3
        code:
          description: ICMP code.
          type: int
          sample: 10
        name:
          description: Name of the type and code.
          type: str
          sample: destination-unreachable/host-prohibited
        reason:
          description: The probe's reason name for it.
          type: str
          sample: host-prohibited
        sender:
          description: Who sent the error.
          type: str
          sample: 10.200.2.15
        sender_is_target:
          description: Whether the target itself sent it (false means a router or firewall in between).
          type: bool
          sample: true
        ttl:
          description: TTL (hop limit) of the ICMP packet as captured.
          type: int
          sample: 63
        time:
          description: When it was captured.
          type: float
          sample: 1795320986.702237
icmp_errors:
  description: Every ICMP destination-unreachable and time-exceeded error in the capture, in order.
  type: list
  elements: dict
  returned: always
  contains:
    packet:
      description: Packet number in the file (1-based).
      type: int
      sample: 20
    time:
      description: When it was captured.
      type: float
      sample: 1795320986.702237
    family:
      description: C(ipv4) or C(ipv6).
      type: str
      sample: ipv4
    type:
      description: ICMP type.
      type: int
      sample: 3
    code:
      description: ICMP code.
      type: int
      sample: 10
    name:
      description: Name of the type and code.
      type: str
      sample: destination-unreachable/host-prohibited
    reason:
      description: The probe's reason name for it.
      type: str
      sample: host-prohibited
    sender:
      description: Who sent the error.
      type: str
      sample: 10.200.2.15
    to:
      description: Whom the error was sent to.
      type: str
      sample: 10.200.1.10
    ttl:
      description: TTL (hop limit) of the ICMP packet.
      type: int
      sample: 63
    sender_is_target:
      description: Whether the flow's target sent it.
      type: bool
      sample: true
    flow:
      description: The flow the error is about (C(protocol), C(src), C(sport), C(dst), C(dport)), from the quoted header.
      type: dict
      sample: {"protocol": "tcp", "src": "10.200.1.10", "sport": 47014, "dst": "10.200.2.15", "dport": 80}
    matched:
      description: Whether the packet the error quotes is in the capture.
      type: bool
      sample: true
    quotes:
      description: C(request) when the error quotes a packet of the initiator, C(reply) when one of the target's.
      type: str
      sample: request
unanswered_syns:
  description: TCP flows whose SYNs got no answer of any kind (no SYN-ACK, RST or ICMP error).
  type: list
  elements: dict
  returned: always
  contains:
    family:
      description: C(ipv4) or C(ipv6).
      type: str
      sample: ipv4
    src:
      description: Initiator address.
      type: str
      sample: 10.200.1.10
    sport:
      description: Initiator port.
      type: int
      sample: 47017
    dst:
      description: Target address.
      type: str
      sample: 10.200.2.18
    dport:
      description: Target port.
      type: int
      sample: 80
    syns:
      description: SYNs sent (retransmissions included).
      type: int
      sample: 4
    first_seen:
      description: Time of the first SYN.
      type: float
      sample: 1795320986.702599
    last_seen:
      description: Time of the last SYN.
      type: float
      sample: 1795320989.753519
resets:
  description: Every TCP segment with RST set, in order.
  type: list
  elements: dict
  returned: always
  contains:
    packet:
      description: Packet number in the file (1-based).
      type: int
      sample: 14
    time:
      description: When it was captured.
      type: float
      sample: 1795320986.701563
    family:
      description: C(ipv4) or C(ipv6).
      type: str
      sample: ipv4
    sender:
      description: Who sent the reset (same as C(src)).
      type: str
      sample: 10.200.2.13
    src:
      description: Source address of the RST.
      type: str
      sample: 10.200.2.13
    sport:
      description: Source port of the RST.
      type: int
      sample: 8080
    dst:
      description: Destination address of the RST.
      type: str
      sample: 10.200.1.10
    dport:
      description: Destination port of the RST.
      type: int
      sample: 47011
    ttl:
      description: TTL (hop limit) of the RST.
      type: int
      sample: 63
    sent_by:
      description: C(responder) (the target), C(initiator), or null when the connection's start is not in the capture.
      type: str
      sample: responder
    answers_syn:
      description: Whether it is the target's first answer to a SYN (a closed port).
      type: bool
      sample: true
    flow:
      description: The flow it belongs to (C(protocol), C(src), C(sport), C(dst), C(dport)), null when unknown.
      type: dict
      sample: {"protocol": "tcp", "src": "10.200.1.10", "sport": 47011, "dst": "10.200.2.13", "dport": 8080}
summary:
  description:
    - Counts over the reported (filtered) flows - one key per state (C(open), C(closed), C(filtered),
      C(open|filtered), C(unreachable)), C(flows), C(icmp_errors), C(unanswered_syns), C(resets) - and over the
      file - C(packets), C(skipped_not_ip) (not IPv4/IPv6 or an unknown link type), C(skipped_other) (other
      protocols, non-first fragments, truncated headers).
  type: dict
  returned: always
  sample: {"open": 3, "closed": 2, "filtered": 6, "open|filtered": 0, "unreachable": 0, "flows": 11, "icmp_errors": 5,
           "unanswered_syns": 2, "resets": 1, "packets": 36, "skipped_not_ip": 0, "skipped_other": 0}
notes:
  description: What was left out and why (max_packets reached, a truncated file, undecodable link types).
  type: list
  elements: str
  returned: always
  sample: []
"""

from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.capture.flows import DEFAULT_MAX_PACKETS, analyze


def _analyze(module):
    p = module.params
    result = analyze(p["path"], max_packets=p["max_packets"], host=p["host"], port=p["port"],
                     allow_truncated=p["allow_truncated"])
    # no ``path`` key: exit_json would add the file's owner/mode/size to a result that has one
    result.pop("path", None)
    return result


def main():
    run_module(dict(
        path=dict(type="path", required=True),
        max_packets=dict(type="int", default=DEFAULT_MAX_PACKETS),
        host=dict(type="str"),
        port=dict(type="int"),
        allow_truncated=dict(type="bool", default=False),
    ), _analyze)


if __name__ == "__main__":
    main()
