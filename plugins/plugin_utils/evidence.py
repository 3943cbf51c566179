# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The evidence file: everything the explainer needs, saved by a gather-only run and read by an
explain-only one (playbooks gather.yml and explain.yml; diagnose does both in one run).

A bundle is ``{schema, created, flows, hosts}``: the flows with the probe, trace and cloud evidence
each one got (``plan.assemble``), and the facts of every host they concern.  It holds no variable
of the inventory and no credential; it does hold every host's ruleset and listeners, as the report does.
"""
from __future__ import annotations

import json

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.plugin_utils import plan as plan_lib

SCHEMA = "netdiag.reachability/evidence/1"


def bundle(plan, hostvars, cloud=None, created=None):
    """The evidence of one run (plan + what the gather and probe stages registered)."""
    flows, hosts = plan_lib.assemble(plan, hostvars, cloud)
    return {"schema": SCHEMA, "created": created, "flows": flows, "hosts": hosts}


def _flow_key(flow):
    return (flow.get("source"), flow["address"], flow["port"], flow["protocol"])


def merge(bundles, names=None):
    """One ``(flows, hosts)`` from several bundles (batches of a fleet, or runs on a schedule); a
    bundle may also be given as its JSON text.

    The bundles are taken oldest first by ``created`` (then in the order given), and a newer one
    wins: for a flow (the same source, address, port and protocol) its evidence, for a host its
    facts.  A flow keeps the place it first had.  ``names`` (the file names) are only for messages.
    """
    if not isinstance(bundles, list) or not bundles:
        raise InputError("no evidence to explain: expected a non-empty list of evidence bundles, got %r" % (bundles,))
    names = list(names or [])
    labelled = []
    for i, item in enumerate(bundles):
        name = names[i] if i < len(names) else "evidence[%d]" % i
        if isinstance(item, str):
            try:
                item = json.loads(item)
            except ValueError as exc:
                raise InputError("%s is not JSON (%s): is it an evidence.json?" % (name, exc)) from None
        if not isinstance(item, dict):
            raise InputError("%s is not an evidence bundle (a JSON object), got %s" % (name, type(item).__name__))
        if item.get("schema") != SCHEMA:
            raise InputError("%s has schema %r; this collection reads %r (write it again with the gather playbook)"
                             % (name, item.get("schema"), SCHEMA))
        if not isinstance(item.get("flows"), list) or not isinstance(item.get("hosts"), dict):
            raise InputError("%s must hold a list 'flows' and a mapping 'hosts'" % name)
        created = item.get("created")
        if created is not None and not isinstance(created, str):
            raise InputError("%s: 'created' must be a time stamp string, got %r" % (name, created))
        for j, flow in enumerate(item["flows"]):
            if not isinstance(flow, dict) or any(k not in flow for k in ("address", "port", "protocol")):
                raise InputError("%s: flows[%d] must be a flow with address, port and protocol, got %.60r" % (name, j, flow))
        labelled.append((created or "", i, item))
    labelled.sort(key=lambda entry: (entry[0], entry[1]))
    flows, order, hosts = {}, [], {}
    for dummy, dummy, item in labelled:
        for flow in item["flows"]:
            key = _flow_key(flow)
            if key not in flows:
                order.append(key)
            flows[key] = flow
        hosts.update(item["hosts"])
    return [flows[k] for k in order], hosts
