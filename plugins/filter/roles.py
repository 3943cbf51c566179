# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the roles compute between module calls (docs in the .yml file of each filter); the roles' tasks only
orchestrate. The code is plugin_utils/roles.py."""

from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.reachability.plugins.plugin_utils import roles as lib
from ansible_collections.netdiag.reachability.plugins.plugin_utils.data import plain

OUTCOME_KEYS = ("open_ports_changed", "open_ports_not_applied")


def _dict(value, name, what):
    value = plain(value)
    if value is not None and not isinstance(value, dict):
        raise AnsibleFilterError("%s: %s must be a dict, not %s" % (name, what, type(value).__name__))
    return value or {}


def _list(value, name, what):
    value = plain(value)
    if value is not None and not isinstance(value, list):
        raise AnsibleFilterError("%s: %s must be a list, not %s" % (name, what, type(value).__name__))
    return value or []


def report_mismatches(report):
    return lib.mismatches(_dict(report, "report_mismatches", "the report"))


def open_ports_still_blocked(probe_result):
    return lib.still_blocked(_dict(probe_result, "open_ports_still_blocked", "the probe result"))


def open_ports_verify_failure(failed, rule, target, result=None):
    return lib.verify_failure(_list(failed, "open_ports_verify_failure", "the ports"),
                              _dict(rule, "open_ports_verify_failure", "the rule"), plain(target),
                              _dict(result, "open_ports_verify_failure", "the change result"))


def open_ports_firewalld_messages(runtime, permanent):
    return lib.firewalld_messages(_dict(runtime, "open_ports_firewalld_messages", "the runtime result"),
                                  _dict(permanent, "open_ports_firewalld_messages", "the permanent result"))


def open_ports_outcome(hosts, hostvars, manual=None):
    hosts = _list(hosts, "open_ports_outcome", "the hosts")
    hv = {}
    for host in hosts:
        if host in hostvars:
            vars_ = hostvars[host]
            hv[host] = {k: plain(vars_[k]) for k in OUTCOME_KEYS if k in vars_}
    return lib.outcome(hosts, hv, _list(manual, "open_ports_outcome", "the manual actions"))


class FilterModule(object):
    def filters(self):
        return {
            "report_mismatches": report_mismatches,
            "open_ports_still_blocked": open_ports_still_blocked,
            "open_ports_verify_failure": open_ports_verify_failure,
            "open_ports_firewalld_messages": open_ports_firewalld_messages,
            "open_ports_outcome": open_ports_outcome,
        }
