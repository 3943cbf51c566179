# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The opt-in kernel trace's planning filter (see roles/reachability/tasks/kernel_trace_*.yml)."""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.plugin_utils.data import plain
from ansible_collections.netdiag.reachability.plugins.plugin_utils.kernel_plan import kernel_trace_plan as _plan
from ansible_collections.netdiag.reachability.plugins.plugin_utils.plan import check_plan

_KEYS = ("ansible_host", "ansible_facts", "reachability_listeners", "reachability_firewall", "reachability_probe",
         "reachability_traces")


def kernel_trace_plan(plan, hostvars, limit=64):
    plan = plain(plan)
    if not isinstance(plan, dict) or not isinstance(plan.get("flows"), list) or "gather" not in plan:
        raise AnsibleFilterError("kernel_trace_plan: the input must be the reachability plan (flow_plan's result), got %s"
                                 % type(plan).__name__)
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError("kernel_trace_plan: hostvars must be a mapping (pass hostvars), got %s"
                                 % type(hostvars).__name__)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise AnsibleFilterError("kernel_trace_plan: limit must be a positive integer, got %r" % (limit,))
    try:
        check_plan(plan)
        hv = {}
        for h in set(plan["gather"]) | set(plan["sources"]):
            if h in hostvars:
                found = hostvars[h]
                hv[h] = {k: plain(found[k]) for k in _KEYS if k in found} if isinstance(found, Mapping) else plain(found)
        return _plan(plan, hv, limit)
    except NetdiagError as exc:
        raise AnsibleFilterError("kernel_trace_plan: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"kernel_trace_plan": kernel_trace_plan}
