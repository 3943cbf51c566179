# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which hosts the opt-in kernel trace runs on, for which packets, and what the sources send
again while it runs (:func:`kernel_trace_plan`), from the plan and what gather and probe registered."""

from __future__ import annotations

from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import parse_number
from ansible_collections.netdiag.reachability.plugins.module_utils.probe.kernel_trace import MAX_PACKETS
from ansible_collections.netdiag.reachability.plugins.plugin_utils import plan as plan_lib
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.evidence import observed, route_path
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.facts import HostIndex


def kernel_trace_plan(plan, hostvars, limit=64):
    """``{hosts: {host: [packet]}, sources: {source: [probe target]}, flows: [flow label]}``.

    A flow is traced when its probe did not reach an open port and a packet left the source (not
    refused by the source's own stack), over TCP or UDP; it is traced on its destination when that
    is a gathered host, and on every gathered host its path crosses (the hosts the trace answered
    from and those the hosts' own routes lead through).  At most ``limit`` flows (a positive integer);
    a plan or hostvars of the wrong shape is an InputError naming where."""
    plan_lib.check_plan(plan)
    hosts_read = set(plan["gather"]) | set(plan["sources"])
    plan_lib.check_hostvars(hostvars, hosts_read)
    limit = parse_number(limit, "limit", 1, 10 ** 6)
    flows, hosts = plan_lib.assemble(plan, hostvars)
    index = HostIndex(hosts)
    gathered = set(plan.get("gather") or [])
    out_hosts, out_sources, labels = {}, {}, []
    for flow in flows:
        if len(labels) >= limit:
            break
        obs = observed(flow.get("probe"), flow["address"])
        if flow["protocol"] not in ("tcp", "udp") or not flow.get("source_address") or obs["state"] in (None, "open") \
                or obs["sender"] == "local":
            continue
        on = []
        walked, _edge = route_path(index, flow["source"], flow["address"])
        names = [n for n, _gw in walked]
        names += [index.name_of(h.get("address")) for h in (flow.get("trace") or {}).get("hops") or []]
        names.append(flow.get("destination") or index.name_of(flow["address"]))
        for name in names:
            if name and name in gathered and name != flow["source"] and name not in on:
                on.append(name)
        if not on:
            continue
        packet = {"src": flow["source_address"], "dst": flow["address"], "protocol": flow["protocol"],
                  "port": int(flow["port"])}
        if any(len(out_hosts.get(h, [])) >= MAX_PACKETS for h in on):
            continue
        for h in on:
            if packet not in out_hosts.setdefault(h, []):
                out_hosts[h].append(packet)
        targets = out_sources.setdefault(flow["source"], [])
        target = next((t for t in targets if t["host"] == flow["address"] and t["protocol"] == flow["protocol"]), None)
        if target is None:
            targets.append({"host": flow["address"], "protocol": flow["protocol"], "ports": [int(flow["port"])]})
        elif int(flow["port"]) not in target["ports"]:
            target["ports"].append(int(flow["port"]))
        labels.append("%s -> %s:%s/%s" % (flow["source"], flow["address"], flow["port"], flow["protocol"]))
    return {"hosts": out_hosts, "sources": out_sources, "flows": labels}
