# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filters read what the modules returned from Ansible's real hostvars without running it through the
templar again (issue 13: the cost of assembling a large run's evidence), and still template what the
inventory writes as a template."""

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

from ansible_collections.netdiag.reachability.plugins.filter import reachability

INVENTORY = """
all:
  hosts:
    web01:
      ansible_host: "{{ '10.200.1.' ~ (5 * 2) }}"
      reachability_firewall: "{{ {'layers': {'nftables': {'present': false}}} }}"
"""


def _hostvars(tmp_path):
    path = tmp_path / "inventory.yml"
    path.write_text(INVENTORY)
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(path)])
    variables = VariableManager(loader=loader, inventory=inventory)
    # what the gather task keeps with set_fact: a module's result, a string in it that looks like a template
    read = {"listeners": [{"address": "0.0.0.0", "port": 80, "protocol": "tcp", "process": "{{ not a template }}"}],
            "interface_addresses": [{"interface": "eth0", "address": "10.200.1.10", "prefix": 24}]}
    variables.set_host_facts("web01", {"reachability_listeners": read})
    return HostVars(inventory=inventory, variable_manager=variables, loader=loader), read


def test_results_are_read_as_returned_and_inventory_templates_are_templated(tmp_path):
    hostvars, read = _hostvars(tmp_path)
    out = reachability._hostvars(hostvars, ["web01", "absent"])
    assert list(out) == ["web01"]
    web = out["web01"]
    assert web["ansible_host"] == "10.200.1.10"                      # templated, as before
    assert web["reachability_listeners"] == read                      # the module's data, unchanged
    assert web["reachability_listeners"]["listeners"][0]["process"].__class__ is str   # plain, not a tagged str
    assert web["reachability_firewall"] == {"layers": {"nftables": {"present": False}}}   # a template: templated
