# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side front ends of the library: plan the flows, explain them, render reports."""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, NetdiagError
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain import run as explain_lib
from ansible_collections.netdiag.reachability.plugins.plugin_utils import evidence as evidence_lib
from ansible_collections.netdiag.reachability.plugins.plugin_utils import plan as plan_lib
from ansible_collections.netdiag.reachability.plugins.plugin_utils import report as report_lib
from ansible_collections.netdiag.reachability.plugins.plugin_utils.data import need, plain, short

HOSTVAR_KEYS = ("ansible_host", "ansible_facts", "reachability_listeners", "reachability_firewall", "reachability_host_read",
                "reachability_probe", "reachability_traces", "reachability_cloud",  # reachability_cloud: settings
                "reachability_kernel_trace_start", "reachability_kernel_trace_result")


CLOUD_QUERY_KEYS = ("ansible_host", "ansible_facts", "reachability_listeners", "reachability_cloud")

# What modules returned (registered, or kept with set_fact): data, not templates, so read without templating it
# again (hostvars[host][key] runs a host's whole ruleset through the templar, the most costly part of assembling
# a large run's evidence). A value that is still a string (a template in the inventory) is templated as before.
RESULT_KEYS = frozenset(("ansible_facts", "reachability_listeners", "reachability_firewall", "reachability_host_read",
                         "reachability_probe", "reachability_traces",
                         "reachability_kernel_trace_start", "reachability_kernel_trace_result"))


def _hostvars(hostvars, hosts, keys=HOSTVAR_KEYS):
    """The variables the library reads (``keys``) of ``hosts``, as plain data (converting every host's
    whole ruleset costs time, so only what is read)."""
    if not isinstance(hostvars, Mapping):
        raise _Shape("hostvars must be a mapping of host names to their variables (pass hostvars), got %s %s"
                     % (type(hostvars).__name__, _short(hostvars)))
    out = {}
    raw_get = getattr(hostvars, "raw_get", None)   # Ansible's HostVars; a plain dict in the unit tests
    for h in hosts:
        if h not in hostvars:
            continue
        hv = hostvars[h]
        if not isinstance(hv, Mapping):
            raise _Shape("hostvars[%r] must be a mapping of variables, got %s %s" % (h, type(hv).__name__, _short(hv)))
        raw = raw_get(h) if raw_get is not None else None
        raw = raw if isinstance(raw, Mapping) else {}
        out[h] = {}
        for k in keys:
            if k in RESULT_KEYS and isinstance(raw.get(k), (Mapping, list)):
                value = raw[k]
            elif k in hv:
                value = hv[k]
            else:
                continue
            if k == "reachability_host_read":
                # only whether this run's read failed, and why (the facts it returned are read as facts)
                value = {r: value[r] for r in ("failed", "msg", "skipped") if isinstance(value, Mapping) and r in value}
            out[h][k] = plain(value)
    return out


class _Shape(Exception):
    """Input of the wrong shape, found at the filter boundary (the message names the key path)."""


def _need(value, types, path, optional=False):
    """``value`` (at key path ``path``) is one of ``types``; returns it (data.need, as a filter input error)."""
    return need(value, types, path, optional=optional, error=_Shape)


def _short(value):
    return short(value)


def _items(value, path, types=dict, optional=True):
    """The items of a list at ``path`` (each one of ``types``), [] when absent and optional."""
    for i, item in enumerate(_need(value, list, path, optional=optional) or []):
        _need(item, types, "%s[%d]" % (path, i))
        yield i, item


def _check_plan(plan):
    """The plan's shape (plan_lib.check_plan, the one check of a plan), as a filter input error."""
    try:
        plan_lib.check_plan(plan)
    except InputError as exc:
        raise _Shape(str(exc))


def _check_hostvars(hostvars, hosts):
    """The variables the gather stage registered, for each host the plan names (plan_lib.check_hostvars)."""
    try:
        plan_lib.check_hostvars(hostvars, hosts)
    except InputError as exc:
        raise _Shape(str(exc))


def _check_cloud(cloud):
    if cloud is None:
        return
    _need(cloud, (dict, list), "cloud")
    results = cloud if isinstance(cloud, list) else cloud.get("results") if "results" in cloud else [cloud]
    for i, result in _items(results, "cloud.results", optional=False):
        if result.get("skipped") or result.get("failed"):
            continue
        for j, verdict in _items(result.get("verdicts"), "cloud.results[%d].verdicts" % i):
            _need(verdict.get("packet"), dict, "cloud.results[%d].verdicts[%d].packet" % (i, j), optional=True)


def _check_flows(flows, hosts):
    for i, flow in _items(flows, "flows", optional=False):
        for key, types in (("address", str), ("port", int), ("protocol", str)):
            if key not in flow:
                raise _Shape("flows[%d] has no %r" % (i, key))
            _need(flow[key], types, "flows[%d].%s" % (i, key))
        for key in ("probe", "trace"):
            _need(flow.get(key), dict, "flows[%d].%s" % (i, key), optional=True)
        _need(flow.get("cloud"), (dict, list), "flows[%d].cloud" % i, optional=True)   # assemble: the verdicts for it
    for name, facts in (_need(hosts, dict, "hosts", optional=True) or {}).items():
        where = "hosts[%r]" % (name,)
        _need(facts, dict, where)
        for key in ("listeners", "interfaces"):
            for dummy in _items(facts.get(key), "%s.%s" % (where, key)):
                pass
        for dummy in _items(facts.get("addresses"), where + ".addresses", str):
            pass
        for key in ("firewall", "sysctls"):
            _need(facts.get(key), dict, "%s.%s" % (where, key), optional=True)


def _check_report(report):
    _need(report, dict, "report")
    for dummy in _items(report.get("flows"), "report.flows", optional=False):
        pass
    _need(report.get("summary"), dict, "report.summary", optional=True)


def _wrap(func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except NetdiagError as exc:
            raise AnsibleFilterError("%s: %s" % (func.__name__, exc))
        except _Shape as exc:
            raise AnsibleFilterError("%s: invalid input: %s" % (func.__name__, exc))
        except (TypeError, AttributeError, KeyError, IndexError) as exc:
            # saved facts are read deep inside; a shape the checks above do not cover still gets a filter error
            raise AnsibleFilterError("%s: invalid input: data of an unexpected shape (%s: %s)"
                                     % (func.__name__, type(exc).__name__, exc))
    run.__name__ = func.__name__
    return run


@_wrap
def flow_plan(flows, groups, hostvars, max_flows=plan_lib.DEFAULT_MAX_FLOWS):
    groups = plain(groups)
    _need(groups, dict, "groups")
    for name, members in groups.items():
        for dummy in _items(members, "groups[%r]" % (name,), str, optional=False):
            pass
    return plan_lib.make_plan(plain(flows), groups, _hostvars(hostvars, groups.get("all", [])), max_flows=max_flows)


@_wrap
def trace_targets(probe_result, limit=30):
    return plan_lib.trace_targets(None, plain(probe_result), limit=plain(limit))  # the library reads it (ASCII digits only)


@_wrap
def explain(plan, hostvars, cloud=None):
    plan = plain(plan)
    _check_plan(plan)
    hv = _hostvars(hostvars, set(plan["gather"]) | set(plan["sources"]))
    _check_hostvars(hv, hv)
    _check_cloud(plain(cloud) if cloud else None)
    flows, hosts = plan_lib.assemble(plan, hv, plain(cloud) if cloud else None)
    return explain_lib.explain(flows, hosts)


@_wrap
def cloud_queries(plan, hostvars, default=None):
    plan = plain(plan)
    _check_plan(plan)
    hosts = set(plan["gather"]) | set(plan["sources"])
    if isinstance(hostvars, Mapping) and not default and not any(
            isinstance(hostvars.get(h), Mapping) and hostvars[h].get("reachability_cloud") for h in hosts if h in hostvars):
        return []   # no cloud settings anywhere: no cloud layer
    return plan_lib.cloud_queries(plan, _hostvars(hostvars, hosts, CLOUD_QUERY_KEYS), plain(default) if default else None)


@_wrap
def explain_facts(flows, hosts=None):
    flows, hosts = plain(flows), plain(hosts or {})
    _check_flows(flows, hosts)
    return explain_lib.explain(flows, hosts)


@_wrap
def evidence(plan, hostvars, cloud=None, created=None):
    plan = plain(plan)
    _check_plan(plan)
    hv = _hostvars(hostvars, set(plan["gather"]) | set(plan["sources"]))
    _check_hostvars(hv, hv)
    _check_cloud(plain(cloud) if cloud else None)
    return evidence_lib.bundle(plan, hv, plain(cloud) if cloud else None, created=plain(created))


@_wrap
def evidence_explain(bundles, names=None):
    bundles = plain(bundles)
    flows, hosts = evidence_lib.merge(bundles if isinstance(bundles, list) else [bundles], plain(names))
    _check_flows(flows, hosts)
    return explain_lib.explain(flows, hosts)


@_wrap
def report_markdown(report):
    report = plain(report)
    _check_report(report)
    return report_lib.markdown(report)


@_wrap
def report_html(report):
    report = plain(report)
    _check_report(report)
    return report_lib.html_page(report)


@_wrap
def report_summary(report):
    report = plain(report)
    _check_report(report)
    return report_lib.summary_lines(report)


class FilterModule(object):
    def filters(self):
        return {
            "flow_plan": flow_plan,
            "trace_targets": trace_targets,
            "explain": explain,
            "cloud_queries": cloud_queries,
            "explain_facts": explain_facts,
            "evidence": evidence,
            "evidence_explain": evidence_explain,
            "report_markdown": report_markdown,
            "report_html": report_html,
            "report_summary": report_summary,
        }
