#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: firewall_info
short_description: Read every firewall layer of a host into one rule model, and say what it does with packets
version_added: "0.1.0"
description:
  - Detects which firewall layers are present and active on the host and reads each one, read-only,
    normalised into the collection's common rule model (see C(docs/rule-model.md)).
  - nftables through libnftables JSON (the C(nftables) Python binding when it imports, else C(nft -j)).
  - iptables, legacy and nft variants, IPv4 and IPv6 (C(iptables-save) and friends); warns about the classic
    trap of legacy and nf_tables tables both filtering (the kernel walks both, C(iptables) shows one).
  - firewalld through its D-Bus API (C(firewall.client)) - backend, default zone, every zone with its target,
    interfaces, sources, services (resolved to ports), ports, protocols, forward ports, masquerade, rich rules
    and ICMP blocks, every ipset with its type, family and entries, runtime and permanent, and their differences. When the daemon is not running, the
    permanent XML under C(/etc/firewalld) and C(/usr/lib/firewalld) is read offline and the result says so. A daemon
    that owns its D-Bus name but does not answer within 5 seconds (stopped, stuck, busy), or stops answering during the
    read, is read the same way, with C(running) null and a warning; the loaded ruleset still decides.
  - ufw from its own files (C(/etc/ufw/ufw.conf), C(/etc/default/ufw), C(user.rules), C(user6.rules)) -
    enabled, defaults, logging, and the rules with the numbers C(ufw status numbered) shows.
  - With O(packets), evaluates each packet on the spot the way the kernel would walk the rules, and returns one
    verdict per packet with the deciding rule, the trace, the firewalld zone-level answer and the ufw answer.
    A match the model cannot express makes the verdict V(indeterminate) with the reason - never a guess.
  - The same evaluation runs later on the saved result with the P(netdiag.reachability.firewall_verdict#filter) filter.
author:
  - netdiag.reachability developers (@netdiag)
requirements:
  - Root on the target (reading nftables and iptables needs it).
  - C(python3-firewall) for the target's Python to read firewalld's runtime configuration; without it the
    permanent configuration is read from the XML files with the standard library, and a warning says so.
options:
  layers:
    description:
      - Which layers to read. Default is every layer; layers that are not installed are reported as not present.
      - V(ufw) rule numbers and the ufw answer need V(iptables) too; the ruleset verdicts need V(nftables)
        and V(iptables).
    type: list
    elements: str
    choices: [nftables, iptables, firewalld, ufw]
  packets:
    description:
      - Packets to evaluate against the rules just read; one verdict per packet in RV(verdicts), in order.
      - A bad packet fails the task naming it; no verdict is returned then.
    type: list
    elements: dict
    default: []
    suboptions:
      family:
        description: V(ipv4) or V(ipv6); taken from the addresses when omitted.
        type: str
      proto:
        description: Protocol name or number (V(tcp), V(udp), V(icmp), ...).
        type: str
        required: true
        aliases: [protocol]
      src:
        description: Source address.
        type: str
        aliases: [source_address]
      dst:
        description: Destination address. When it is not one of the host's addresses, the packet is forwarded.
        type: str
        aliases: [address]
      sport:
        description: Source port.
        type: int
      dport:
        description: Destination port.
        type: int
        aliases: [port]
      iif:
        description:
          - Interface the packet comes in on. Left out on an incoming or forwarded packet with a
            O(packets[].src), it is taken from the host's routes toward that source (the interface
            the reply would leave on), and RV(verdicts[].iif) says so.
        type: str
      oif:
        description: Interface the packet leaves on (forwarded or outgoing packets).
        type: str
      ct_state:
        description: Conntrack state.
        type: str
        default: new
        choices: [new, established, related, invalid, untracked]
      icmp_type:
        description: ICMP type (name or number) for ICMP packets; default echo-request.
        type: raw
      path:
        description:
          - Which hooks the packet takes; default V(input) when O(packets[].dst) is the host's own address
            (or not given), else V(forward).
        type: str
        choices: [input, forward, output]
  include_rules:
    description:
      - Return the whole rule model in RV(ruleset). When false, RV(ruleset) is null (the packets are still
        evaluated) - use it to keep large rulesets out of the output.
    type: bool
    default: true
extends_documentation_fragment:
  - netdiag.reachability.attributes.info_module
attributes:
  platform:
    platforms: linux
    details: Linux hosts (nftables, iptables, firewalld, ufw).
notes:
  - The evaluator models matches on addresses, ports, protocols, interfaces, conntrack state and status, ICMP
    type/code, address types, marks, sets, maps and verdict maps. Rate limits, C(-m recent), C(fib) lookups,
    C(xt) expressions and similar make the verdict V(indeterminate) with the reason.
seealso:
  - name: The rule model and the evaluator
    description: docs/rule-model.md in the collection.
    link: https://github.com/netdiag/reachability/blob/main/docs/rule-model.md
"""

EXAMPLES = r"""
- name: Read every firewall layer
  netdiag.reachability.firewall_info:
  become: true
  register: fw

- name: Would a web client reach port 8443?
  netdiag.reachability.firewall_info:
    include_rules: false
    packets:
      - proto: tcp
        src: 10.200.1.10
        dst: "{{ ansible_host }}"
        dport: 8443
        iif: eth0
  become: true
  register: fw_check

- name: Show what decided it
  ansible.builtin.debug:
    msg: "{{ fw_check.verdicts[0].verdict }} by {{ fw_check.verdicts[0].deciding_rule.text | default('a policy') }}"

- name: Later, on the saved facts, with no connection to the host
  ansible.builtin.debug:
    msg: "{{ fw | netdiag.reachability.firewall_verdict({'proto': 'tcp', 'src': '10.0.0.5', 'dport': 22}) }}"
"""

RETURN = r"""
layers:
  description:
    - One entry per layer read (keys V(nftables), V(iptables), V(firewalld), V(ufw)) - whether it is installed
      (C(present)), whether it filters anything (C(active)), how it was read (C(read_with)) and why it could
      not be (C(error)). Layer-specific keys - nftables C(tables); iptables C(variants), C(active_variants),
      C(families), C(mixed_legacy_and_nft); firewalld C(backend), C(reason) (why it was read offline);
      ufw C(enabled).
    - C(unreadable) is true when the layer is there but what its reader got (the C(nft) JSON, the C(iptables-save)
      output, the firewalld or ufw files) could not be parsed. Such a layer has C(present=true), C(active=null)
      and an C(error) naming the layer and the reason (also in RV(firewall_warnings)); the other layers are still
      read. An unreadable nftables or iptables layer makes every verdict V(indeterminate) (see
      RV(verdicts[].readable_layers)); an unreadable firewalld or ufw layer only loses its own answer, the rules it
      loaded being read from nftables/iptables.
  returned: always
  type: dict
  sample:
    nftables: {present: true, active: true, read_with: python3-nftables, error: null, unreadable: false,
               tables: ["inet firewalld"]}
    iptables: {present: true, active: null, read_with: null, unreadable: true,
               error: "iptables: cannot read this layer, its output could not be parsed: table filter has no COMMIT
                       (truncated output?) in ip6tables-nft-save"}
    firewalld: {present: true, active: true, read_with: dbus, error: null, unreadable: false, backend: nftables,
                reason: null}
    ufw: {present: false, active: false, read_with: null, error: null, unreadable: false}
ruleset:
  description:
    - Every layer combined in the common rule model - C(tables) (backend, family, name, sets, chains with hook,
      priority, policy and rules, each rule with its matches, verdict and C(origin)) and C(warnings).
      Null when O(include_rules=false).
  returned: always
  type: dict
  sample: {"model": 1, "warnings": [], "tables": [{"backend": "nftables", "family": "inet", "name": "filter",
           "sets": {}, "chains": [{"name": "input", "type": "filter", "hook": "input", "priority": 0,
           "policy": "accept", "rules": []}]}]}
local_addresses:
  description: The host's own addresses, used to tell local from forwarded packets; null when unknown.
  returned: always
  type: list
  elements: str
  sample: ["10.200.2.11", "127.0.0.1", "::1"]
firewalld:
  description:
    - firewalld's configuration; null when firewalld is not installed or not read.
    - C(running) (null when not known - no bindings, or a daemon that did not answer), C(read_with) (V(dbus), V(offline (firewall.core.io)) when the daemon
      is not running, or V(xml (standard library; no firewalld bindings))), C(reason) (why offline), C(version),
      C(backend), C(default_zone); C(runtime) and C(permanent) (C(default_zone), C(zones) - per zone
      C(target) (V(default), V(ACCEPT), V(REJECT), V(DROP)), C(interfaces), C(sources) (addresses, networks, MAC
      addresses and C(ipset:NAME)), C(services), C(service_ports), C(ports), C(protocols), C(source_ports),
      C(forward_ports), C(masquerade), C(forward), C(rich_rules), C(icmp_blocks), C(icmp_block_inversion),
      C(ingress_priority) (firewalld 2.0 and later dispatch zones by it, lower first; 0 otherwise) - and C(ipsets) - per
      ipset C(type) (V(hash:ip), V(hash:net), V(hash:mac), V(hash:ip,port), ...), C(family) (V(inet) or V(inet6)),
      C(timeout) (seconds, 0 for none; firewalld lists no entries of an ipset with a timeout), C(options) and
      C(entries)); C(runtime) is null offline; C(services) (definitions of the services the zones use);
      C(differences) between runtime and permanent (per zone and key; for an ipset C(zone) is null and C(ipset) names
      it, with C(key) V(ipset) when it is defined on one side only, else V(type), V(family), V(timeout) or V(entries)).
  returned: always
  type: dict
  sample: {"running": true, "read_with": "dbus", "reason": null, "version": "1.3.3", "backend": "nftables",
           "default_zone": "public", "differences": [{"zone": "public", "key": "ports",
           "runtime_only": ["9000/tcp"], "permanent_only": []}],
           "runtime": {"default_zone": "public", "zones": {"public": {"target": "default",
           "services": ["ssh"], "service_ports": {"ssh": ["22/tcp"]}, "ports": ["8000/tcp", "9000/tcp"]},
           "internal": {"target": "default", "sources": ["ipset:admins"]}},
           "ipsets": {"admins": {"type": "hash:net", "family": "inet", "timeout": 0, "options": {},
           "entries": ["10.200.1.0/24"]}}}}
ufw:
  description:
    - ufw's configuration; null when ufw is not installed or not read. C(enabled) (ufw.conf), C(active) (its
      chains are loaded), C(defaults) (C(incoming), C(outgoing), C(routed) - V(deny), V(allow) or V(reject)),
      C(logging), C(ipv6), C(rules) (C(number) as C(ufw status numbered) shows it, C(action), C(direction),
      C(routed), C(proto), C(port), C(to), C(from), C(from_port), C(interface_in), C(interface_out), C(v6),
      C(text), C(tuple), C(lines) (the iptables lines per chain) and C(origins) (those rules in RV(ruleset))).
  returned: always
  type: dict
  sample: {"enabled": true, "active": true, "logging": "low", "ipv6": true,
           "defaults": {"incoming": "deny", "outgoing": "allow", "routed": "deny"},
           "rules": [{"number": 1, "action": "allow", "direction": "in", "proto": "tcp", "port": "22",
                      "from": "0.0.0.0/0", "text": "22/tcp ALLOW IN Anywhere", "v6": false}]}
firewall_warnings:
  description:
    - What the reader noticed - legacy and nft iptables both active, chains it does not walk, firewalld read
      offline, ufw files out of sync with the kernel, a layer that could not be parsed (its RV(layers) C(error)).
    - Each is also shown as an Ansible warning (Ansible reserves the result key C(warnings)).
  returned: always
  type: list
  elements: str
  sample: ["iptables-legacy tables (ip filter) and nf_tables tables (inet filter (nftables)) are both active: ..."]
verdicts:
  description: One per packet of O(packets), in order; empty without packets.
  returned: always
  type: list
  elements: dict
  contains:
    packet:
      description: The packet as given.
      type: dict
      returned: always
      sample: {"proto": "tcp", "src": "10.200.1.10", "dport": 80}
    path:
      description: V(input), V(forward) or V(output).
      type: str
      returned: always
      sample: input
    verdict:
      description: V(accept), V(drop), V(reject) or V(indeterminate).
      type: str
      returned: always
      sample: reject
    reply:
      description: "What a reject sends back - C({kind: rst}) or C({kind: icmp, type, code, name}); null otherwise."
      type: dict
      returned: always
      sample: {"kind": "icmp", "family": "ipv4", "type": 3, "code": 13, "name": "destination-unreachable/admin-prohibited"}
    rule:
      description: Origin of the rule that dropped, rejected or could not be decided (backend, family, table,
        chain, handle or line, text); null for accepts and policies.
      type: dict
      returned: always
      sample: {"backend": "nftables", "family": "inet", "table": "firewalld", "chain": "filter_IN_public",
               "handle": 72, "text": "reject with icmpx admin-prohibited"}
    deciding_rule:
      description: The rule that decided - RV(verdicts[].rule), or for an accept the last rule that accepted
        it in a base chain; null when a policy decided.
      type: dict
      returned: always
      sample: {"backend": "nftables", "family": "inet", "table": "filter", "chain": "input", "handle": 4,
               "text": "tcp dport 22 accept"}
    policy:
      description: True when a base chain's policy decided.
      type: bool
      returned: always
      sample: false
    chain:
      description: The base chain where the walk ended (backend, family, table, chain, hook, priority).
      type: dict
      returned: always
      sample: {"backend": "nftables", "family": "inet", "table": "firewalld", "chain": "filter_INPUT",
               "hook": "input", "priority": 10}
    trace:
      description: Every rule that matched on the way (jumps, gotos, maps, NAT, the decision), in order.
      type: list
      elements: dict
      returned: always
      sample: []
    accepts:
      description: Each base chain that accepted the packet, with the accepting rule (or null and policy true).
      type: list
      elements: dict
      returned: always
      sample: []
    nat:
      description: The destination NAT applied on the way (C(dst), C(dport), C(rule)); null when none.
      type: dict
      returned: always
      sample: null
    hooks:
      description: The hooks walked.
      type: list
      elements: str
      returned: always
      sample: [prerouting, input]
    reason:
      description: The verdict in words; for V(indeterminate), what could not be modelled or which layer could
        not be read.
      type: str
      returned: always
      sample: "rejected by nftables rule 'reject with icmpx admin-prohibited' (inet firewalld table, chain filter_IN_public, handle 72)"
    warnings:
      description: The ruleset's warnings that apply to every verdict.
      type: list
      elements: str
      returned: always
      sample: []
    firewalld:
      description:
        - The zone-level answer when firewalld was read and the packet is for this host - C(zone), C(zone_from)
          (V(source) - an address or network binding -, V(ipset) - the source is an entry of an ipset bound to the zone -,
          V(interface), V(default), or V(undecided)), C(zone_reason), C(zone_binding) (the binding that chose the zone -
          C(kind) V(address), V(ipset), V(interface) or V(mac), C(value), and for an ipset C(ipset), C(entry), C(type)),
          C(zone_next) (for an ipset binding, the zone the source falls to without that entry), C(target), C(allowed),
          C(allowed_by) (ports, services, protocols that let it in), C(verdict), C(reason), C(rich_rules), C(config)
          (V(runtime) or V(permanent)), C(agrees_with_ruleset) and C(disagreement) (when firewalld's
          configuration and the loaded ruleset disagree).
        - Zones are dispatched as firewalld does - by ingress priority, source bindings before interface bindings, then by
          zone name. When the source address alone cannot tell the zone (an ipset of a type that also needs a port, a mark or a
          MAC address, a MAC binding, an ipset whose entries firewalld does not list), C(zone) is null, C(zone_from) is
          V(undecided) and C(zone_candidates) (C(zone), C(binding), C(why)) lists the zones it may be in, in firewalld's order,
          the last one where it goes otherwise; C(verdict) is then given only when every candidate agrees.
        - A dict with only C(error) when firewalld is there but its files could not be parsed. Null otherwise.
      type: dict
      returned: always
      sample: {"zone": "public", "zone_from": "default", "zone_binding": null, "zone_candidates": [], "zone_next": null,
               "target": "default", "allowed": false, "allowed_by": [],
               "verdict": "reject", "agrees_with_ruleset": true, "disagreement": null}
    ufw:
      description:
        - The answer in ufw's terms when ufw is active - C(by) (V(rule), V(default), V(builtin), V(other)),
          C(rule) (the number C(ufw status numbered) shows), C(rule_text), C(action), C(default_policy), C(text).
          A dict with only C(error) when ufw is there but its files could not be parsed. Null otherwise.
      type: dict
      returned: always
      sample: {"by": "default", "rule": null, "rule_text": null, "action": "deny", "default_policy": "deny",
               "text": "no ufw rule matched: the default incoming policy (deny) applies"}
    iif:
      description:
        - When the packet had no O(packets[].iif), the interface taken from the host's routes toward its
          source (C(name)) and why (C(from)); null when the packet named its interface or no route decided.
      type: dict
      returned: always
      sample: {"name": "eth0", "from": "the route toward 10.200.1.10 (0.0.0.0/0) goes out on eth0"}
    readable_layers:
      description:
        - When an nftables or iptables layer is unreadable (RV(layers) C(unreadable)) its rules may decide any
          packet, so RV(verdicts[].verdict) is V(indeterminate) and RV(verdicts[].reason) names the layer and why.
          This holds what the layers that were read say on their own - C(verdict), C(reply), C(rule),
          C(deciding_rule), C(reason). Null when every filtering layer was read.
      type: dict
      returned: always
      sample: {"verdict": "accept", "reply": null, "rule": null, "reason": "every base chain on the path accepted",
               "deciding_rule": {"backend": "iptables-nft", "family": "ip", "table": "filter",
                                 "chain": "ufw-user-input", "line": 105, "text": "-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT"}}
"""

from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.firewall import LAYERS, result


def _read(module):
    p = module.params
    packets = [{k: v for k, v in pkt.items() if v is not None} for pkt in p["packets"]]
    return result(layers=p["layers"], packets=packets, include_rules=p["include_rules"])


def main():
    run_module(dict(
        layers=dict(type="list", elements="str", choices=list(LAYERS)),
        packets=dict(type="list", elements="dict", default=[], options=dict(
            family=dict(type="str"),
            proto=dict(type="str", required=True, aliases=["protocol"]),
            src=dict(type="str", aliases=["source_address"]),
            dst=dict(type="str", aliases=["address"]),
            sport=dict(type="int"),
            dport=dict(type="int", aliases=["port"]),
            iif=dict(type="str"),
            oif=dict(type="str"),
            ct_state=dict(type="str", default="new",
                          choices=["new", "established", "related", "invalid", "untracked"]),
            icmp_type=dict(type="raw"),
            path=dict(type="str", choices=["input", "forward", "output"]),
        )),
        include_rules=dict(type="bool", default=True),
    ), _read, warn=["firewall_warnings"])


if __name__ == "__main__":
    main()
