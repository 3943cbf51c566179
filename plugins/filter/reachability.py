# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side front ends of the library: plan the flows, explain them, render reports."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain import run as explain_lib
from ansible_collections.netdiag.reachability.plugins.plugin_utils import plan as plan_lib
from ansible_collections.netdiag.reachability.plugins.plugin_utils import report as report_lib
from ansible_collections.netdiag.reachability.plugins.plugin_utils.data import plain

HOSTVAR_KEYS = ("ansible_host", "ansible_facts", "reachability_listeners", "reachability_firewall",
                "reachability_probe", "reachability_traces", "reachability_cloud")  # reachability_cloud: settings


def _hostvars(hostvars, hosts):
    out = {}
    for h in hosts:
        if h not in hostvars:
            continue
        hv = hostvars[h]
        out[h] = {k: plain(hv[k]) for k in HOSTVAR_KEYS if k in hv}
    return out


def _wrap(func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except NetdiagError as exc:
            raise AnsibleFilterError("%s: %s" % (func.__name__, exc))
    run.__name__ = func.__name__
    return run


@_wrap
def flow_plan(flows, groups, hostvars, max_flows=plan_lib.DEFAULT_MAX_FLOWS):
    groups = plain(groups)
    return plan_lib.make_plan(plain(flows), groups, _hostvars(hostvars, groups.get("all", [])), max_flows=max_flows)


@_wrap
def trace_targets(probe_result, limit=30):
    return plan_lib.trace_targets(None, plain(probe_result), limit=int(limit))


@_wrap
def explain(plan, hostvars, cloud=None):
    plan = plain(plan)
    hv = _hostvars(hostvars, set(plan["gather"]) | set(plan["sources"]))
    flows, hosts = plan_lib.assemble(plan, hv, plain(cloud) if cloud else None)
    return explain_lib.explain(flows, hosts)


@_wrap
def cloud_queries(plan, hostvars, default=None):
    plan = plain(plan)
    hosts = set(plan["gather"]) | set(plan["sources"])
    return plan_lib.cloud_queries(plan, _hostvars(hostvars, hosts), plain(default) if default else None)


@_wrap
def explain_facts(flows, hosts=None):
    return explain_lib.explain(plain(flows), plain(hosts or {}))


@_wrap
def report_markdown(report):
    return report_lib.markdown(plain(report))


@_wrap
def report_html(report):
    return report_lib.html_page(plain(report))


@_wrap
def report_summary(report):
    return report_lib.summary_lines(plain(report))


class FilterModule(object):
    def filters(self):
        return {
            "flow_plan": flow_plan,
            "trace_targets": trace_targets,
            "explain": explain,
            "cloud_queries": cloud_queries,
            "explain_facts": explain_facts,
            "report_markdown": report_markdown,
            "report_html": report_html,
            "report_summary": report_summary,
        }
