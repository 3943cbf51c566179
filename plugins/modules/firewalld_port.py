#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: firewalld_port
short_description: Open or close ports, services and rich rules in a firewalld zone, runtime and permanent, with a dry-run diff
version_added: "0.1.0"
description:
  - Opens (O(state=present)) or closes (O(state=absent)) ports, port ranges and services in a firewalld
    zone. Protocols V(tcp), V(udp), V(sctp) and V(dccp). Adds or removes rich rules (O(rich_rules)), e.g. to open
    a port for one source address only.
  - By default changes both the runtime and the permanent configuration and keeps them in step; each
    side is compared with what is asked and only what differs is changed, so the port is open now and
    after a reload or reboot. O(runtime) and O(permanent) restrict the change to one side.
  - Without O(zone), the zone is the one that actually handles the traffic, as firewalld chooses it -
    the zone a O(source) address is bound to (by an address or network, or by an ipset - C(--add-source=ipset:NAME) -
    it is an entry of), else the zone of the O(interface), else the default zone.
    RV(zone) and RV(zone_reason) say which zone and why.
  - When the source address alone cannot tell the zone (it may be in an ipset of a type that also needs a port,
    a mark or a MAC address, such as C(hash:ip,port) or C(hash:mac); or in an ipset whose entries firewalld does not
    list), the task fails naming the zones it may be, and changes nothing - give O(zone).
  - Port ranges follow firewalld's semantics. A port already covered by an open range is not added
    again; opening a range merges it with the ranges it overlaps; closing part of a range splits it.
  - Check mode computes exactly what would change and returns it in RV(changes) and RV(diff) (the
    zone's runtime and permanent settings before and after); nothing is changed.
  - Works through the firewalld D-Bus API. When firewalld is not running, the permanent configuration
    is edited offline (the zone's XML file under C(/etc/firewalld/zones), written atomically with a
    C(.old) backup) and the result says so in RV(offline) and RV(notes).
  - All input is checked first (ports, protocols, zone and service names, rich rules); an invalid value fails
    the task with a message naming it, and nothing is changed.
author:
  - netdiag.reachability developers (@netdiag)
requirements:
  - firewalld's Python bindings on the target (Debian/Ubuntu C(python3-firewall); Fedora/RHEL
    C(python3-firewall)), used by C(/usr/bin/python3).
options:
  ports:
    description:
      - Ports to open or close, as V(PORT), V(PORT/PROTOCOL), V(FIRST-LAST) or V(FIRST-LAST/PROTOCOL),
        e.g. V(8080/tcp), V(9000-9010/udp). A spec without a protocol uses O(protocol).
      - Ports are 1 to 65535.
    type: list
    elements: raw
    default: []
  services:
    description:
      - firewalld services to add to or remove from the zone, e.g. V(https). They must be defined
        (C(firewall-cmd --get-services)); an undefined service can only be removed from a zone that
        still lists it.
    type: list
    elements: str
    default: []
  protocol:
    description: Protocol of the O(ports) given without one.
    type: str
    choices: [tcp, udp, sctp, dccp]
    default: tcp
  state:
    description: V(present) opens, V(absent) closes.
    type: str
    choices: [present, absent]
    default: present
  zone:
    description:
      - The zone to change. Without it the zone is found from O(source) and O(interface), as firewalld
        picks it for incoming traffic, falling back to the default zone.
    type: str
  interface:
    description: The interface the traffic comes in on; its zone is used when O(source) is not bound to one.
    type: str
  source:
    description:
      - The address or network the traffic comes from. When it falls within a source bound to a zone - an
        address, a network, or an entry of a C(hash:ip)/C(hash:net) ipset bound with C(ipset:NAME) - that zone is
        used. When it is within the sources of several zones, the zone firewalld dispatches first is used - the
        lower ingress priority (firewalld 2.0 and later; 0 by default), then the zone name.
      - It only chooses the zone; to open a port for this source only, use O(rich_rules).
    type: str
  rich_rules:
    description:
      - Rich rules to add (O(state=present)) or remove (O(state=absent)) in the zone, in firewalld's rich
        language (C(man firewalld.richlanguage)), e.g.
        V(rule family="ipv4" source address="10.200.1.10" port port="9000" protocol="tcp" accept).
      - Each is checked with firewalld's own parser (C(firewall.core.rich)); a malformed one fails the task naming
        it. They are compared in the text firewalld normalises them to (what C(--list-rich-rules) prints), so a rule
        already there in another spelling is not added again.
      - O(timeout) applies to them as to ports.
    type: list
    elements: str
    default: []
  runtime:
    description: Change the runtime configuration (takes effect at once, lost at a reload).
    type: bool
    default: true
  permanent:
    description:
      - Change the permanent configuration (survives a reload). With O(runtime=false) this alone does
        not open anything until firewalld is reloaded; the module does not reload.
    type: bool
    default: true
  timeout:
    description:
      - Seconds after which firewalld closes again what this run opened in the runtime configuration.
        V(0) means never. Needs O(permanent=false) and O(state=present).
    type: int
    default: 0
extends_documentation_fragment:
  - netdiag.reachability.attributes
attributes:
  check_mode:
    support: full
    description: Computes the exact changes and the resulting settings without changing anything.
  diff_mode:
    support: full
    description: Returns the zone's runtime and permanent settings before and after.
  platform:
    platforms: linux
    details: Linux hosts with firewalld.
notes:
  - Only ports, services and the rich rules given are changed; everything else in the zone (other rich rules,
    sources, interfaces, forward ports, target) is shown in the diff for context and left as it is.
  - When the offline configuration is edited while firewalld runs elsewhere with another configuration
    directory, the module cannot know; it edits C(/etc/firewalld).
seealso:
  - module: ansible.posix.firewalld
    description: The general firewalld module (no diff; in check mode it only says changed).
"""

EXAMPLES = r"""
- name: Open 9000/tcp where traffic from the web tier lands (zone chosen like firewalld does)
  netdiag.reachability.firewalld_port:
    ports: ["9000/tcp"]
    source: 10.0.1.0/24
    interface: eth0

- name: See what would change first
  netdiag.reachability.firewalld_port:
    zone: public
    ports: ["8000-8010/tcp", "53/udp"]
    services: [https]
  check_mode: true
  diff: true
  register: plan

- name: Close a port in the permanent configuration only
  netdiag.reachability.firewalld_port:
    zone: internal
    ports: [3306]
    state: absent
    runtime: false

- name: Open 9000/tcp for one client only, in the zone its address is bound to (an ipset, say)
  netdiag.reachability.firewalld_port:
    source: 10.200.1.10
    rich_rules:
      - rule family="ipv4" source address="10.200.1.10" port port="9000" protocol="tcp" accept

- name: Open a port for ten minutes (runtime only, firewalld closes it again)
  netdiag.reachability.firewalld_port:
    ports: ["5201/tcp"]
    permanent: false
    timeout: 600
"""

RETURN = r"""
zone:
  description: The zone that was (or would be) changed.
  returned: always
  type: str
  sample: public
zone_from:
  description:
    - How the zone was chosen, V(given), V(source) (an address or network binding), V(ipset) (the source is an
      entry of an ipset bound to the zone), V(interface) or V(default).
  returned: always
  type: str
  sample: default
zone_reason:
  description: Why this zone, in words.
  returned: always
  type: str
  sample: "source 10.200.1.10 is in ipset admins (entry 10.200.1.0/24), bound to zone internal"
offline:
  description: True when firewalld was not running and the permanent configuration was edited on disk.
  returned: always
  type: bool
  sample: false
config_file:
  description: The zone file that an offline edit writes (or would write); null when firewalld runs.
  returned: always
  type: str
  sample: /etc/firewalld/zones/public.xml
configs:
  description: The configurations compared and changed, V(runtime) and/or V(permanent).
  returned: always
  type: list
  elements: str
  sample: [runtime, permanent]
changes:
  description:
    - What was (in check mode, would be) done, one firewalld call per entry, in order; empty when
      nothing needed to change.
  returned: always
  type: list
  elements: dict
  sample: [{"config": "runtime", "action": "add_port", "port": "9000", "protocol": "tcp"},
           {"config": "permanent", "action": "add_service", "service": "https"}]
  contains:
    config:
      description: V(runtime) or V(permanent).
      type: str
      returned: always
      sample: runtime
    action:
      description: V(add_port), V(remove_port), V(add_service), V(remove_service), V(add_rich_rule) or V(remove_rich_rule).
      type: str
      returned: always
      sample: add_port
    port:
      description: Port or range, as firewalld writes it.
      type: str
      returned: for port actions
      sample: "9000-9010"
    protocol:
      description: Protocol of the port.
      type: str
      returned: for port actions
      sample: tcp
    service:
      description: Service name.
      type: str
      returned: for service actions
      sample: https
    rich_rule:
      description: The rich rule, as firewalld normalises it.
      type: str
      returned: for rich-rule actions
      sample: rule family="ipv4" source address="10.200.1.10" port port="9000" protocol="tcp" accept
ports_changed:
  description:
    - The ports (C(PORT/PROTO) or C(FIRST-LAST/PROTO)) that this call opened (or, with O(state=absent), closed) in
      any configuration; in check mode, would. Ports already in the wanted state and services are not in it, so
      undoing exactly this call is the opposite O(state) for these ports.
  returned: always
  type: list
  elements: str
  sample: ["9000-9010/tcp"]
runtime_ports_changed:
  description:
    - The same as RV(ports_changed), in the runtime configuration only - what a revert timer
      (M(netdiag.reachability.revert_timer)) must undo for a runtime change.
  returned: always
  type: list
  elements: str
  sample: ["9000-9010/tcp"]
rich_rules_changed:
  description:
    - The rich rules (as firewalld normalises them) this call added (or, with O(state=absent), removed) in any
      configuration; in check mode, would. Undoing exactly this call is the opposite O(state) for these rules.
  returned: always
  type: list
  elements: str
  sample: ['rule family="ipv4" source address="10.200.1.10" port port="9000" protocol="tcp" accept']
runtime_rich_rules_changed:
  description: The same as RV(rich_rules_changed), in the runtime configuration only (what a revert timer undoes).
  returned: always
  type: list
  elements: str
  sample: []
notes:
  description: What the user should know (offline edit, runtime left unchanged, unexpected state).
  returned: always
  type: list
  elements: str
  sample: []
settings:
  description:
    - The zone's settings before and after (in check mode, the predicted after), per configuration
      (V(runtime), V(permanent)); keys C(target), C(services), C(ports), C(protocols), C(source_ports),
      C(forward_ports), C(masquerade), C(forward), C(icmp_blocks), C(icmp_block_inversion),
      C(rich_rules), C(interfaces), C(sources), C(ingress_priority). Ports are sorted C(PORT[-PORT]/PROTOCOL) strings,
      rich rules sorted, as firewalld normalises them.
  returned: always
  type: dict
  sample: {"before": {"runtime": {"services": ["dhcpv6-client", "ssh"], "ports": ["8000/tcp"]}},
           "after": {"runtime": {"services": ["dhcpv6-client", "ssh"], "ports": ["8000/tcp", "9000/tcp"]}}}
diff:
  description:
    - The same settings as RV(settings) as text for C(--diff), one line per item, each naming the
      configuration and the zone, so every changed line says where it changes.
  returned: always
  type: dict
  sample: {"before": "runtime zone public: target default\nruntime zone public: port 8000/tcp\n",
           "after": "runtime zone public: target default\nruntime zone public: port 8000/tcp\n
                     runtime zone public: port 9000/tcp\n",
           "before_header": "zone public (runtime), before", "after_header": "zone public (runtime), after"}
msg:
  description: One line saying what changed or would change.
  returned: always
  type: str
  sample: "changed zone public (runtime: add port 9000/tcp; permanent: add port 9000/tcp)"
"""

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.fix.firewalld_port import (
    connect, ensure, normalize_request)


def _ensure(module):
    p = module.params
    request = normalize_request(
        ports=p["ports"], services=p["services"], protocol=p["protocol"], state=p["state"],
        runtime=p["runtime"], permanent=p["permanent"], timeout=p["timeout"], zone=p["zone"],
        interface=p["interface"], source=p["source"], rich_rules=p["rich_rules"])
    backend, offline_reason = connect()
    try:
        return ensure(backend, request, check_mode=module.check_mode, offline_reason=offline_reason)
    except NetdiagError as exc:
        # what ran before firewalld refused: ensure() lists it in ``changes`` (from the refused call's ``done``)
        if hasattr(exc, "changes"):
            exc.result = {"changes": exc.changes}
        raise


def main():
    run_module(dict(
        ports=dict(type="list", elements="raw", default=[]),
        services=dict(type="list", elements="str", default=[]),
        protocol=dict(type="str", choices=["tcp", "udp", "sctp", "dccp"], default="tcp"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        zone=dict(type="str"),
        interface=dict(type="str"),
        source=dict(type="str"),
        rich_rules=dict(type="list", elements="str", default=[]),
        runtime=dict(type="bool", default=True),
        permanent=dict(type="bool", default=True),
        timeout=dict(type="int", default=0),
    ), _ensure, warn=["notes"], done_key="changes", mutually_exclusive=[("zone", "interface"), ("zone", "source")])


if __name__ == "__main__":
    main()
