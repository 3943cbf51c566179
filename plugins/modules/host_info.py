#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: host_info
short_description: Read everything the reachability explainer needs from a host in one call
version_added: 0.2.0
description:
  - One read-only call per host instead of three (C(setup), M(netdiag.reachability.listeners_info),
    M(netdiag.reachability.firewall_info)) - what the C(reachability) role runs on every gathered host.
  - RV(listeners_info) is what M(netdiag.reachability.listeners_info) returns - listening sockets, bind
    scope, processes, accept queues, reachability sysctls, listen-overflow counters, routes and interface
    addresses of both families.
  - RV(firewall_info) is what M(netdiag.reachability.firewall_info) returns with no packets - every
    firewall layer in one rule model; when the layers cannot be read, it says why and the listeners are
    returned all the same.
author:
  - netdiag.reachability developers (@netdiag)
options:
  ports:
    description:
      - Only report listeners on these ports (as M(netdiag.reachability.listeners_info)'s O(netdiag.reachability.listeners_info#module:ports)).
      - Empty means every port.
    type: list
    elements: raw
    default: []
  protocols:
    description: Only report listeners of these protocols.
    type: list
    elements: str
    choices: [tcp, udp]
    default: [tcp, udp]
  include_process:
    description: Find the processes holding each socket.
    type: bool
    default: true
  firewall:
    description: Also read every firewall layer (RV(firewall_info)).
    type: bool
    default: true
  facts:
    description:
      - Return the two results as host facts instead - RV(ansible_facts.reachability_listeners) and
        RV(ansible_facts.reachability_firewall) - so Ansible keeps them for the rest of the run, and a fact cache
        keeps them for later runs, without a C(set_fact) task per host (what the C(reachability) role does).
      - RV(listeners_info) and RV(firewall_info) are then left out of the result.
    type: bool
    default: false
extends_documentation_fragment:
  - netdiag.reachability.attributes.info_module
attributes:
  platform:
    platforms: linux
    details: Linux (reads C(/proc), C(NETLINK_SOCK_DIAG), iproute2 and the firewall tools).
notes:
  - Reads the network namespace the module runs in.
  - C(changed) is always V(false).
seealso:
  - module: netdiag.reachability.listeners_info
  - module: netdiag.reachability.firewall_info
"""

EXAMPLES = r"""
- name: Read the host for the explainer
  netdiag.reachability.host_info:
  register: host

- name: Which addresses does it have?
  ansible.builtin.debug:
    msg: "{{ host.listeners_info.interface_addresses | map(attribute='address') | list }}"

- name: Keep the read as facts of the host (hostvars[host].reachability_listeners, cached by a fact cache)
  netdiag.reachability.host_info:
    facts: true

- name: Listeners only, on two ports
  netdiag.reachability.host_info:
    ports: [80, 443]
    firewall: false
"""

RETURN = r"""
listeners_info:
  description:
    - What M(netdiag.reachability.listeners_info) returns (its C(warnings) as a list) - C(listeners), C(sysctls),
      C(routes), C(interface_addresses), C(counters), C(process_scan).
  returned: unless O(facts)
  type: dict
  sample: {"listeners": [], "routes": [], "interface_addresses": [{"interface": "eth0", "family": "ipv4",
           "address": "10.200.1.10", "prefix": 24, "scope": "global", "secondary": false}]}
firewall_info:
  description:
    - What M(netdiag.reachability.firewall_info) returns for no packets - C(layers), C(ruleset), C(firewalld),
      C(ufw), C(local_addresses), C(firewall_warnings).
    - C({failed, msg}) when the layers could not be read; null with O(firewall=false).
  returned: unless O(facts)
  type: dict
  sample: {"layers": {"nftables": {"present": true, "active": true}}, "firewall_warnings": []}
ansible_facts:
  description: With O(facts), the two results as host facts.
  returned: with O(facts)
  type: dict
  contains:
    reachability_listeners:
      description: What RV(listeners_info) would be.
      type: dict
      returned: with O(facts)
      sample: {"listeners": [], "interface_addresses": []}
    reachability_firewall:
      description: What RV(firewall_info) would be; C({skipped} true) with O(firewall=false).
      type: dict
      returned: with O(facts)
      sample: {"layers": {}, "firewall_warnings": []}
"""

from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.host import read_host


def _read(module):
    p = module.params
    out = read_host(ports=p["ports"], protocols=p["protocols"], include_process=p["include_process"],
                    firewall=p["firewall"])
    if p["facts"]:
        out["ansible_facts"] = {"reachability_listeners": out.pop("listeners_info"),
                                "reachability_firewall": out.pop("firewall_info") or {"skipped": True}}
    return out


def main():
    run_module(dict(
        ports=dict(type="list", elements="raw", default=[]),
        protocols=dict(type="list", elements="str", choices=["tcp", "udp"], default=["tcp", "udp"]),
        include_process=dict(type="bool", default=True),
        firewall=dict(type="bool", default=True),
        facts=dict(type="bool", default=False),
    ), _read, warn=["warnings"])


if __name__ == "__main__":
    main()
