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
  returned: always
  type: dict
  sample: {"listeners": [], "routes": [], "interface_addresses": [{"interface": "eth0", "family": "ipv4",
           "address": "10.200.1.10", "prefix": 24, "scope": "global", "secondary": false}]}
firewall_info:
  description:
    - What M(netdiag.reachability.firewall_info) returns for no packets - C(layers), C(ruleset), C(firewalld),
      C(ufw), C(local_addresses), C(firewall_warnings).
    - C({failed, msg}) when the layers could not be read; null with O(firewall=false).
  returned: always
  type: dict
  sample: {"layers": {"nftables": {"present": true, "active": true}}, "firewall_warnings": []}
"""

from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.host import read_host


def _read(module):
    p = module.params
    return read_host(ports=p["ports"], protocols=p["protocols"], include_process=p["include_process"],
                     firewall=p["firewall"])


def main():
    run_module(dict(
        ports=dict(type="list", elements="raw", default=[]),
        protocols=dict(type="list", elements="str", choices=["tcp", "udp"], default=["tcp", "udp"]),
        include_process=dict(type="bool", default=True),
        firewall=dict(type="bool", default=True),
    ), _read, warn=["warnings"])


if __name__ == "__main__":
    main()
