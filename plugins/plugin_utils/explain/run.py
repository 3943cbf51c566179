# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The explainer: one verdict per flow, from saved facts, with no network.

Inputs are the plain results of the collection's modules:

``hosts``  ``{name: HOSTFACTS}`` for every managed host that was gathered, where
``HOSTFACTS = {addresses: [str], interfaces: [{name, address, prefix}], listeners: [...]
(listeners_info), sysctls: {...} (listeners_info), firewall: firewall_info result or a ruleset
dict (``{"tables": ...}``), cloud: [security_group_info verdicts]}``; every key is optional.
Cloud verdicts only count for the flow whose packet they evaluated.

``flows`` a list of ``{source, source_address, destination, address, port, protocol, expect,
probe, trace, cloud, cloud_error}`` where ``source``/``destination`` are host names (``destination`` may be None for a
plain address), ``probe`` is one probe result entry and ``trace`` a trace result or None.

Output (:func:`explain`): ``{schema, version, flows: [FINDING], summary}`` where FINDING is the
flow plus ``state``, ``cause``, ``culprit``, ``evidence``, ``fix``, ``conflicts``,
``outcome`` and ``matches_expect``.  The vocabulary is DESIGN.md's and docs/verdicts.md's.

The package: run (this entry point) -> causes (the decision per flow) -> evidence (the observation
and what is gathered for a flow), cloud (security groups) -> fixes (culprits and fix text);
facts (host index, rules evaluated on saved facts) underneath.
"""

from __future__ import annotations

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import REPORT_SCHEMA as SCHEMA, REPORT_VERSION as SCHEMA_VERSION
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.facts import HostIndex
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.causes import explain_flow


def explain(flows, hosts=None):
    """Explain every flow; return the versioned report document."""
    if not isinstance(flows, list):
        raise InputError("flows must be a list, got %s" % type(flows).__name__)
    index = HostIndex(hosts or {}, flows)
    findings = []
    for flow in flows:
        for key in ("address", "port", "protocol"):
            if key not in flow:
                raise InputError("flow %r has no %r" % (flow, key))
        findings.append(explain_flow(flow, index))
    by_cause = {}
    for f in findings:
        by_cause[f["cause"]] = by_cause.get(f["cause"], 0) + 1
    failed = [f for f in findings if f["cause"] != "ok"]
    mismatched = [f for f in findings if not f["matches_expect"]]
    return {"schema": SCHEMA, "version": SCHEMA_VERSION, "flows": findings,
            "summary": {"flows": len(findings), "ok": len(findings) - len(failed), "failed": len(failed),
                        "by_cause": by_cause, "mismatched": len(mismatched),
                        "conflicts": sum(1 for f in findings if f["conflicts"])}}
