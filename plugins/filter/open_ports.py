# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side front ends of the open_ports library: rules, plans from a report, the firewalld guard."""

from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils.fix import firewalld_guard, guard
from ansible_collections.netdiag.reachability.plugins.plugin_utils import open_ports as lib
from ansible_collections.netdiag.reachability.plugins.plugin_utils.data import plain


def open_ports_rules(rules, host=None, hosts=None):
    """The validated rules that apply to ``host``."""
    try:
        norm = lib.normalize_rules(plain(rules), plain(hosts) if hosts is not None else None)
    except NetdiagError as exc:
        raise AnsibleFilterError(str(exc))
    return [r for r in norm if host is None or r["host"] in (None, host)]


def open_ports_plan(report, play_hosts, inventory_hosts=None, verify=True, source="the report"):
    try:
        return lib.plan_from_report(plain(report), plain(play_hosts), plain(inventory_hosts), bool(verify), source)
    except NetdiagError as exc:
        raise AnsibleFilterError(str(exc))


def open_ports_run_plan(report, rules, inventory_hosts, hosts=None, limit=None, limit_hosts=None,
                        verify=True, source="the report", routers=False):
    """The remediate playbook's plan: a report (or None) and rules, narrowed by open_ports_hosts and --limit."""
    try:
        return lib.plan_run(plain(report) if report else None, plain(rules), plain(inventory_hosts), plain(hosts),
                            plain(limit) or None, plain(limit_hosts), bool(verify), source, bool(routers))
    except NetdiagError as exc:
        raise AnsibleFilterError(str(exc))


def open_ports_management(ssh_connection, source=None, port=None, address=None):
    """The management connection: ``SSH_CONNECTION`` text, overridden by ``source``/``port``/``address``."""
    found = guard.management_from_ssh_connection(ssh_connection) or {}
    mgmt = {"source": source or found.get("source"), "address": address or found.get("address"),
            "port": int(port) if port else found.get("port") or 22}
    try:
        return guard.normalize_management(mgmt)
    except NetdiagError as exc:
        raise AnsibleFilterError(str(exc))


def open_ports_firewalld_guard(preview, firewalld_facts, management):
    """Fail when the zone settings a firewalld_port preview predicts would cut the management connection."""
    preview = plain(preview)
    try:
        return firewalld_guard.firewalld_guard(plain(firewalld_facts), preview.get("zone"),
                                               (preview.get("settings") or {}).get("after") or {}, plain(management))
    except NetdiagError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {
            "open_ports_rules": open_ports_rules,
            "open_ports_plan": open_ports_plan,
            "open_ports_run_plan": open_ports_run_plan,
            "open_ports_management": open_ports_management,
            "open_ports_firewalld_guard": open_ports_firewalld_guard,
        }
