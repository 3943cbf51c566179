# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn the user's ``reachability_flows`` into a plan (which hosts to gather, what each source
probes), and gathered Ansible variables into the explainer's host facts.  Pure Python: the
filter plugins call it with plain dicts taken from the inventory and hostvars.
"""

from __future__ import annotations

import ipaddress
import socket

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import parse_number, parse_port_spec
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import PROBE_PROTOCOLS
from ansible_collections.netdiag.reachability.plugins.plugin_utils.data import need

EXPECT = ("open", "closed")
DEFAULT_MAX_FLOWS = 5000


def _as_list(value, what):
    if value is None:
        raise InputError("flow %s is missing" % what)
    if isinstance(value, (str, int)):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise InputError("flow %s must be a name or a list, got %r" % (what, value))


def _need(value, types, where, optional=False):
    """``value`` (found at ``where``) is one of ``types`` (bool is not an int); else InputError naming both."""
    return need(value, types, where, optional=optional)


def _dicts(value, where, optional=True):
    """The dicts of the list at ``where`` ([] when it is absent and ``optional``)."""
    for i, item in enumerate(_need(value, list, where, optional) or []):
        yield i, _need(item, dict, "%s[%d]" % (where, i))


def _check_groups(groups):
    _need(groups, dict, "groups")
    for name, members in groups.items():
        for i, member in enumerate(_need(members, list, "groups[%r]" % (name,))):
            _need(member, str, "groups[%r][%d]" % (name, i))


def _is_address(text):
    try:
        ipaddress.ip_address(str(text))
        return True
    except ValueError:
        return False


def _resolve_hosts(names, groups, what, allow_addresses=False):
    """Inventory host or group names (and, for destinations, plain addresses) -> [(host, address)]."""
    out = []
    for name in names:
        name = str(name)
        if name in groups.get("all", []):
            out.append((name, None))
        elif name in groups:
            members = groups[name]
            if not members:
                raise InputError("flow %s %r is an empty group" % (what, name))
            out.extend((m, None) for m in members)
        elif allow_addresses and _is_address(name):
            out.append((None, name))
        else:
            raise InputError("flow %s %r is not an inventory host or group%s" % (
                what, name, " nor an IP address" if allow_addresses else ""))
    return out


def host_address(hostvars, host):
    """The address flows to ``host`` go to: its ``ansible_host`` (or its name), resolved on the
    controller when it is a name, IPv4 first (as ssh would usually connect)."""
    hv = _need(hostvars.get(host), dict, "hostvars[%r]" % (host,), optional=True) or {}
    name = str(hv.get("ansible_host") or host)
    if _is_address(name):
        return name
    return _resolve_name(name, host)


_RESOLVED = {}


def _resolve_name(name, host):
    if name not in _RESOLVED:
        try:
            infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, ValueError) as exc:
            raise InputError("host %s: %r is not an IP address and does not resolve on the controller (%s); set "
                             "ansible_host to the address flows should go to" % (host, name, exc))
        addrs = [i[4][0] for i in infos]
        v4 = [a for a in addrs if ":" not in a]
        _RESOLVED[name] = (v4 or addrs)[0]
    return _RESOLVED[name]


def make_plan(flows, groups, hostvars, max_flows=DEFAULT_MAX_FLOWS):
    """Expand flows; returns ``{flows, probes: {source: [target...]}, gather: [hosts], sources: [hosts]}``.

    ``groups`` is Ansible's ``groups`` (must include ``all``); ``hostvars`` maps host -> vars
    (only ``ansible_host`` is read).  A flow is ``{from, to, ports, expect}``.  Input of the wrong shape
    is an InputError naming where it is.
    """
    _check_groups(groups)
    _need(hostvars, dict, "hostvars")
    max_flows = parse_number(max_flows, "max_flows", 1, 10 ** 9)
    if not isinstance(flows, list) or not flows:
        raise InputError("reachability_flows must be a non-empty list of {from, to, ports, expect}")
    out_flows, seen = [], set()
    for i, flow in enumerate(flows):
        if not isinstance(flow, dict):
            raise InputError("reachability_flows[%d] must be a dict, got %r" % (i, flow))
        unknown = set(flow) - {"from", "to", "ports", "expect", "name"}
        if unknown:
            raise InputError("reachability_flows[%d] has unknown keys: %s" % (i, ", ".join(sorted(unknown))))
        expect = flow.get("expect", "open")
        if expect not in EXPECT:
            raise InputError("reachability_flows[%d] expect %r: must be open or closed" % (i, expect))
        sources = _resolve_hosts(_as_list(flow.get("from"), "'from'"), groups, "'from'")
        dests = _resolve_hosts(_as_list(flow.get("to"), "'to'"), groups, "'to'", allow_addresses=True)
        specs = [parse_port_spec(p, default_protocol="tcp", protocols=PROBE_PROTOCOLS) if str(p) != "icmp"
                 else {"first": 0, "last": 0, "protocol": "icmp"}
                 for p in _as_list(flow.get("ports"), "'ports'")]
        for src, dummy in sources:
            for dest, addr in dests:
                address = addr or host_address(hostvars, dest)
                if dest is None:
                    dest = _host_by_address(hostvars, groups, address)
                if dest == src:
                    continue
                for spec in specs:
                    for port in range(spec["first"], spec["last"] + 1):
                        key = (src, address, port, spec["protocol"])
                        if key in seen:
                            continue
                        seen.add(key)
                        out_flows.append({"name": flow.get("name"), "source": src, "destination": dest,
                                          "address": address, "port": port, "protocol": spec["protocol"],
                                          "expect": expect})
                        if len(out_flows) > max_flows:
                            raise InputError("reachability_flows expand to more than %d flows" % max_flows)
    probes = {}
    for f in out_flows:
        targets = probes.setdefault(f["source"], {})
        t = targets.setdefault((f["address"], f["protocol"]), {"host": f["address"], "protocol": f["protocol"], "ports": []})
        if f["protocol"] != "icmp":
            t["ports"].append(f["port"])
    gather = []
    for f in out_flows:
        for h in (f["source"], f["destination"]):
            if h and h not in gather:
                gather.append(h)
    for g in ("routers",):  # routers in the inventory may sit on the path: their forward rules matter
        for h in groups.get(g, []):
            if h not in gather:
                gather.append(h)
    return {"flows": out_flows,
            "probes": {s: [dict(t, ports=_compact(t["ports"])) if t["ports"] else {"host": t["host"], "protocol": "icmp"}
                           for t in ts.values()] for s, ts in probes.items()},
            "gather": gather, "sources": sorted(probes)}


def _compact(ports):
    return sorted(set(ports))


def _host_by_address(hostvars, groups, address):
    """The inventory host whose ansible_host is ``address`` (names are not resolved for this)."""
    for h in groups.get("all", []):
        hv = _need(hostvars.get(h), dict, "hostvars[%r]" % (h,), optional=True) or {}
        if str(hv.get("ansible_host") or h) == address:
            return h
    return None


def host_facts(hv):
    """The explainer's facts for one host from its Ansible variables (what the gather stage registered)."""
    facts = {}
    cached = hv.get("ansible_facts") or {}   # set_fact cacheable: a fact cache holds them as facts
    lst = hv.get("reachability_listeners") or cached.get("reachability_listeners") or {}
    read = hv.get("reachability_host_read") or {}
    if isinstance(read, dict) and read.get("failed") and not read.get("skipped"):
        # this run's read failed (host_info facts: true sets no facts then): older facts are not this run's
        failure = {"failed": True, "msg": read.get("msg") or "host_info failed"}
        hv = dict(hv, reachability_listeners=failure, reachability_firewall=failure)
        cached, lst = {}, failure
    if lst and not lst.get("failed") and not lst.get("skipped"):
        facts["listeners"] = lst.get("listeners")
        facts["sysctls"] = lst.get("sysctls")
        if lst.get("routes") is not None:
            facts["routes"] = lst.get("routes")
    fw = hv.get("reachability_firewall") or cached.get("reachability_firewall") or {}
    errors = ["%s: %s" % (what, res.get("msg") or "the read failed") for what, res in (("listeners", lst), ("firewall", fw))
              if res.get("failed")]
    if errors:
        facts["gather_errors"] = errors
    if fw and not fw.get("failed") and not fw.get("skipped"):
        facts["firewall"] = {k: fw.get(k) for k in ("ruleset", "layers", "firewalld", "ufw", "local_addresses",
                                                    "firewall_warnings")}
    kt = kernel_trace_facts(hv)
    if kt is not None:
        facts["kernel_trace"] = kt
    af = hv.get("ansible_facts") or {}
    if lst and not lst.get("failed") and not lst.get("skipped") and lst.get("interface_addresses") is not None:
        facts.update(_gathered_addresses(lst["interface_addresses"], lst.get("routes") or []))
        _add_ansible_host(hv, facts["addresses"])
        return facts
    ifaces = []
    default_if = (af.get("default_ipv4") or {}).get("interface")
    default_if6 = (af.get("default_ipv6") or {}).get("interface")
    for name in af.get("interfaces") or []:
        data = af.get(name.replace("-", "_")) or {}
        v4 = data.get("ipv4") or {}
        if v4.get("address") and name != "lo":
            ifaces.append({"name": name, "address": v4["address"], "prefix": _prefix(v4.get("prefix"), 32, name, v4["address"]),
                           "default": name == default_if})
        for v6 in data.get("ipv6") or []:
            if isinstance(v6, dict) and v6.get("address") and v6.get("scope", "global") == "global" and name != "lo":
                ifaces.append({"name": name, "address": v6["address"], "prefix": _prefix(v6.get("prefix"), 128, name, v6["address"]),
                               "default": name == default_if6})
    if ifaces:
        facts["interfaces"] = ifaces
    addrs = list(af.get("all_ipv4_addresses") or [])
    addrs += [a for a in af.get("all_ipv6_addresses") or [] if not str(a).lower().startswith("fe80:")]
    _add_ansible_host(hv, addrs)
    facts["addresses"] = addrs
    return facts


def _prefix(value, default, interface, address):
    """An interface address's prefix length (an int or ASCII digits, as setup gives it), else InputError;
    ``default`` is also the longest there is (32 for IPv4, 128 for IPv6)."""
    return parse_number(value or default, "prefix of %s address %s" % (interface, address), 0, default)


def _add_ansible_host(hv, addrs):
    if hv.get("ansible_host") and _is_address(hv["ansible_host"]) and hv["ansible_host"] not in addrs:
        addrs.append(str(hv["ansible_host"]))


def _default_interfaces(routes):
    """Family -> the interface of the default route with the lowest metric."""
    out = {}
    for r in sorted(routes, key=lambda r: r.get("metric") or 0):
        if r.get("dst") in ("0.0.0.0/0", "::/0") and (r.get("type") or "unicast") == "unicast" and r.get("dev"):
            out.setdefault(r.get("family"), r["dev"])
    return out


def _gathered_addresses(entries, routes):
    """``interfaces`` and ``addresses`` from listeners_info's ``interface_addresses`` and ``routes``,
    as they come out of Ansible's network facts: per interface other than lo its first IPv4
    address and its global IPv6 ones; every address but 127.0.0.1, ::1 and link-local ones."""
    default = _default_interfaces(routes)
    ifaces, addrs, primary = [], [], set()
    for a in entries:
        name, family, address = a.get("interface"), a.get("family"), a.get("address")
        if not address:
            continue
        if address not in ("127.0.0.1", "::1") and not str(address).lower().startswith("fe80:") and address not in addrs:
            addrs.append(address)
        if name == "lo":
            continue
        if family == "ipv4" and name not in primary and not a.get("secondary"):
            primary.add(name)
            ifaces.append({"name": name, "address": address, "prefix": _prefix(a.get("prefix"), 32, name, address),
                           "default": name == default.get("ipv4")})
        elif family == "ipv6" and a.get("scope", "global") == "global":
            ifaces.append({"name": name, "address": address, "prefix": _prefix(a.get("prefix"), 128, name, address),
                           "default": name == default.get("ipv6")})
    out = {"addresses": [a for a in addrs if ":" not in a] + [a for a in addrs if ":" in a]}  # IPv4 first, as setup
    if ifaces:
        out["interfaces"] = ifaces
    return out


def kernel_trace_facts(hv):
    """What the opt-in kernel trace saw on a host (kernel_trace start and stop results), or None."""
    start, stop = hv.get("reachability_kernel_trace_start") or {}, hv.get("reachability_kernel_trace_result") or {}
    if not start or start.get("skipped"):
        return None
    if start.get("failed") or stop.get("failed"):
        return {"error": (stop if stop.get("failed") else start).get("msg") or "the kernel trace failed"}
    if not stop or stop.get("skipped"):
        return None
    if stop.get("replaced"):
        return {"error": "another run's kernel trace replaced this one on the host: its evidence is not used"}
    return {"packets": start.get("packets") or [], "traces": stop.get("traces") or [],
            "window_expired": bool(stop.get("window_expired")), "legacy_rules": bool(stop.get("legacy_rules")),
            "neighbours": stop.get("neighbours") or []}


def source_address(facts, destination):
    """The address a source uses towards ``destination``: the interface on its subnet, else the default."""
    try:
        dst = ipaddress.ip_address(destination)
    except ValueError:
        dst = None
    version = dst.version if dst is not None else 4
    default = None
    for iface in facts.get("interfaces") or []:
        try:
            net = ipaddress.ip_network("%s/%s" % (iface["address"], iface["prefix"]), strict=False)
        except (KeyError, ValueError):
            continue
        if net.version != version:
            continue
        if iface.get("default") and default is None:
            default = iface["address"]
        if dst is not None and dst in net:
            return iface["address"]
    same_family = [a for a in facts.get("addresses") or [] if _version(a) == version]
    return default or (same_family or [None])[0]


def flow_source_address(hostvars, flow, facts=None):
    """The address the flow's source sends from: from its gathered facts, else its ansible_host."""
    if facts is None:
        facts = host_facts(hostvars.get(flow["source"]) or {})
    return source_address(facts, flow["address"]) or host_address(hostvars, flow["source"])


def _version(address):
    try:
        return ipaddress.ip_address(str(address)).version
    except ValueError:
        return None


def check_plan(plan):
    """Raise InputError naming the first part of ``plan`` (make_plan's result) of the wrong shape (a flow's
    port out of 0-65535 included).  The one check of a plan: every filter that takes one runs it first."""
    _need(plan, dict, "plan")
    for key in ("flows", "gather", "sources"):
        if key not in plan:
            raise InputError("plan has no %r (pass the result of the flow_plan filter)" % key)
    for i, flow in _dicts(plan["flows"], "plan.flows", optional=False):
        where = "plan.flows[%d]" % i
        for key, types in (("source", str), ("address", str), ("port", int), ("protocol", str)):
            if key not in flow:
                raise InputError("%s has no %r" % (where, key))
            _need(flow[key], types, "%s.%s" % (where, key))
        parse_number(flow["port"], where + ".port", 0, 65535)
        _need(flow.get("destination"), str, where + ".destination", optional=True)
    for key in ("gather", "sources"):
        for i, host in enumerate(_need(plan[key], list, "plan." + key)):
            _need(host, str, "plan.%s[%d]" % (key, i))


_ROUTE_FIELDS = (("dst", str), ("gateway", str), ("dev", str), ("type", str), ("family", str), ("metric", int))
_ADDRESS_FIELDS = (("interface", str), ("family", str), ("address", str), ("scope", str))


def _check_fields(item, fields, where):
    for key, types in fields:
        _need(item.get(key), types, "%s.%s" % (where, key), optional=True)


def _check_prefix(item, where):
    if item.get("prefix") not in (None, ""):
        v4 = item.get("family") == "ipv4" or (item.get("family") is None and ":" not in str(item.get("address") or ":"))
        parse_number(item["prefix"], where + ".prefix", 0, 32 if v4 else 128)


def _check_ansible_facts(af, where):
    for i, name in enumerate(_need(af.get("interfaces"), list, where + ".interfaces", optional=True) or []):
        _need(name, str, "%s.interfaces[%d]" % (where, i))
        data = _need(af.get(name.replace("-", "_")), dict, "%s.%s" % (where, name), optional=True) or {}
        v4 = _need(data.get("ipv4"), dict, "%s.%s.ipv4" % (where, name), optional=True) or {}
        _check_fields(v4, (("address", str),), "%s.%s.ipv4" % (where, name))
        _check_prefix(v4, "%s.%s.ipv4" % (where, name))
        for j, v6 in enumerate(_need(data.get("ipv6"), list, "%s.%s.ipv6" % (where, name), optional=True) or []):
            if isinstance(v6, dict):
                _check_fields(v6, (("address", str), ("scope", str)), "%s.%s.ipv6[%d]" % (where, name, j))
                _check_prefix(v6, "%s.%s.ipv6[%d]" % (where, name, j))
    for key in ("default_ipv4", "default_ipv6"):
        _check_fields(_need(af.get(key), dict, "%s.%s" % (where, key), optional=True) or {}, (("interface", str),),
                      "%s.%s" % (where, key))
    for key in ("all_ipv4_addresses", "all_ipv6_addresses"):
        for i, address in enumerate(_need(af.get(key), list, "%s.%s" % (where, key), optional=True) or []):
            _need(address, str, "%s.%s[%d]" % (where, key, i))


def _gathered_result(hv, key, where):
    """A registered result of the gather stage (also from a fact cache), when it is there and succeeded."""
    res = _need(hv.get(key), dict, "%s.%s" % (where, key), optional=True)
    res = res or _need((hv.get("ansible_facts") or {}).get(key), dict, "%s.ansible_facts.%s" % (where, key), optional=True)
    return res if res and not res.get("failed") and not res.get("skipped") else None


def check_hostvars(hostvars, hosts):
    """Raise InputError naming the first variable of ``hosts`` the planners read that has the wrong
    shape (``hostvars['web'].reachability_listeners.routes[2].metric must be an integer, got str 'x'``).

    The one check of the gathered variables: :func:`assemble`'s callers (the explain and evidence filters,
    the kernel trace plan) run it first."""
    _need(hostvars, dict, "hostvars")
    for host in sorted(h for h in hosts if h in hostvars):
        where = "hostvars[%r]" % (host,)
        hv = _need(hostvars[host], dict, where)
        _need(hv.get("ansible_host"), str, where + ".ansible_host", optional=True)
        _check_ansible_facts(_need(hv.get("ansible_facts"), dict, where + ".ansible_facts", optional=True) or {},
                             where + ".ansible_facts")
        lst = _gathered_result(hv, "reachability_listeners", where)
        if lst:
            lwhere = where + ".reachability_listeners"
            for dummy in _dicts(lst.get("listeners"), lwhere + ".listeners"):
                pass
            _need(lst.get("sysctls"), dict, lwhere + ".sysctls", optional=True)
            for i, route in _dicts(lst.get("routes"), lwhere + ".routes"):
                _check_fields(route, _ROUTE_FIELDS, "%s.routes[%d]" % (lwhere, i))
            for i, entry in _dicts(lst.get("interface_addresses"), lwhere + ".interface_addresses"):
                _check_fields(entry, _ADDRESS_FIELDS, "%s.interface_addresses[%d]" % (lwhere, i))
                _check_prefix(entry, "%s.interface_addresses[%d]" % (lwhere, i))
        fw = _gathered_result(hv, "reachability_firewall", where)
        if fw:
            _need(fw.get("ruleset"), dict, where + ".reachability_firewall.ruleset", optional=True)
            for i, address in enumerate(_need(fw.get("local_addresses"), list, where + ".reachability_firewall.local_addresses",
                                              optional=True) or []):
                _need(address, str, "%s.reachability_firewall.local_addresses[%d]" % (where, i))
        for key in ("reachability_kernel_trace_start", "reachability_kernel_trace_result"):
            _need(hv.get(key), dict, "%s.%s" % (where, key), optional=True)
        probe = _need(hv.get("reachability_probe"), dict, where + ".reachability_probe", optional=True) or {}
        for i, r in _dicts(probe.get("results"), where + ".reachability_probe.results"):
            rwhere = "%s.reachability_probe.results[%d]" % (where, i)
            _check_fields(r, (("address", str), ("protocol", str), ("port", int)), rwhere)
            _need(r.get("reply"), dict, rwhere + ".reply", optional=True)
        traces = _need(hv.get("reachability_traces"), dict, where + ".reachability_traces", optional=True) or {}
        for i, t in _dicts(traces.get("results"), where + ".reachability_traces.results"):
            twhere = "%s.reachability_traces.results[%d]" % (where, i)
            item = _need(t.get("item"), dict, twhere + ".item", optional=True)
            if not t.get("verdict"):
                continue   # skipped loop items and failed traces are not read further
            _check_fields((item or {}) if "item" in t else t, (("address", str), ("target", str), ("protocol", str), ("port", int)),
                          twhere + (".item" if "item" in t else ""))
            for j, hop in _dicts(t.get("hops"), twhere + ".hops"):
                _check_fields(hop, (("address", str),), "%s.hops[%d]" % (twhere, j))


def assemble(plan, hostvars, cloud=None):
    """Plan + gathered hostvars (+ security_group_info results) -> (flows with probe/trace/cloud
    evidence, hosts facts) for explain()."""
    cloud, cloud_errors = cloud_verdicts(cloud)
    hosts = {h: host_facts(hostvars.get(h) or {}) for h in plan["gather"]}
    results = {}
    traces = {}
    probe_errors = {}
    for src in plan["sources"]:
        hv = hostvars.get(src) or {}
        pr = hv.get("reachability_probe") or {}
        if pr.get("failed") or pr.get("unreachable"):
            probe_errors[src] = pr.get("msg") or "the probe module failed"
        for r in pr.get("results") or []:
            results[(src, r.get("address"), r.get("port") if r.get("protocol") != "icmp" else 0, r.get("protocol"))] = r
        traces.update(_traces(src, hv.get("reachability_traces")))
    flows = []
    for f in plan["flows"]:
        key = (f["source"], f["address"], f["port"], f["protocol"])
        probe = results.get(key)
        src_addr = flow_source_address(hostvars, f, hosts.get(f["source"]))
        if probe is None:
            probe = {"state": None, "reason": "not-probed"}
            if f["source"] in probe_errors:
                probe.update(reason="probe-failed", error=probe_errors[f["source"]])
        flow = dict(f, probe=probe, trace=traces.get(key), source_address=src_addr)
        matched = cloud.get((src_addr, f["address"], f["port"] if f["protocol"] != "icmp" else 0, f["protocol"]))
        if matched:
            flow["cloud"] = matched
        if f["address"] in cloud_errors:
            flow["cloud_error"] = cloud_errors[f["address"]]
        flows.append(flow)
    return flows, hosts


def _traces(src, registered):
    """A source's registered traces by (source, address, port, protocol): one trace call with
    ``targets`` (its ``results``, each naming its ``target``), or a loop of single traces (each
    loop result's ``item``)."""
    out = {}
    for t in (registered or {}).get("results") or []:
        if not isinstance(t, dict) or not t.get("verdict"):
            continue
        if "item" in t:
            where = t.get("item") or {}
            address = where.get("address")
        else:
            where = t
            address = t.get("target") or t.get("address")
        port = parse_number(where.get("port") or 0, "port of %s's trace to %s" % (src, address), 0, 65535)
        out[(src, address, port, where.get("protocol"))] = t
    return out


CLOUD_OPTIONS = ("provider", "region", "profile", "access_key", "secret_key", "session_token", "endpoint_url",
                 "ephemeral_ports", "retries")
CLOUD_CREDENTIALS = ("access_key", "secret_key", "session_token")  # never copied into a query (loop items are printed)


def _cloud_settings(value, where):
    if value in (None, "", {}):
        return None
    if not isinstance(value, dict) or value.get("provider") not in ("aws", "alicloud"):
        raise InputError("reachability_cloud of %s must be a dict of security_group_info options with provider "
                         "aws or alicloud, got %r" % (where, value if not isinstance(value, dict) else
                                                      {k: v for k, v in value.items() if k == "provider"}))
    unknown = sorted(set(value) - set(CLOUD_OPTIONS))
    if unknown:
        raise InputError("reachability_cloud of %s has unknown keys: %s (known: %s)" % (
            where, ", ".join(unknown), ", ".join(CLOUD_OPTIONS)))
    return {k: value[k] for k in CLOUD_OPTIONS if value.get(k) is not None}


def cloud_queries(plan, hostvars, default=None):
    """The security_group_info calls the flows need: one per (cloud settings, destination address).

    The settings are the destination host's ``reachability_cloud`` (inventory or extra vars),
    else ``default`` (the controller's, for flows to plain addresses); flows without settings
    have no cloud layer.  Each query's packets are the flows' own (source address as gathered).
    A query holds no credentials: ``settings_from`` names the host whose ``reachability_cloud``
    to take them from (None: the controller's), so the task reads them where they are kept."""
    default_settings = _cloud_settings(default, "the controller")
    queries = {}
    for f in plan["flows"]:
        dest = f.get("destination")
        settings = _cloud_settings((hostvars.get(dest) or {}).get("reachability_cloud"), dest) if dest else None
        settings_from = dest if settings else None
        settings = settings or default_settings
        if not settings:
            continue
        key = (tuple(sorted((k, str(v)) for k, v in settings.items())), f["address"])
        q = queries.setdefault(key, {"label": "%s (%s)" % (f["address"], settings["provider"]), "host": dest,
                                     "settings_from": settings_from,
                                     "options": {k: v for k, v in settings.items() if k not in CLOUD_CREDENTIALS},
                                     "addresses": [f["address"]], "packets": []})
        src = flow_source_address(hostvars, f)
        pkt = {"proto": f["protocol"], "src": src, "dst": f["address"]}
        if f["protocol"] != "icmp":
            pkt["dport"] = f["port"]
        if pkt not in q["packets"]:
            q["packets"].append(pkt)
    return list(queries.values())


def cloud_verdicts(results):
    """security_group_info results (one, or a loop's ``results``) -> ({(src, dst, port, proto): [verdict]},
    {dst: error message}) for :func:`assemble`."""
    if isinstance(results, dict):
        results = results.get("results") if "results" in results else [results]
    verdicts, errors = {}, {}
    for r in results or []:
        if not isinstance(r, dict) or r.get("skipped"):
            continue
        if r.get("failed"):
            item = r.get("item") or {}
            for addr in item.get("addresses") or [None]:
                errors[addr] = str(r.get("msg") or "security_group_info failed")
            continue
        for v in r.get("verdicts") or []:
            if not isinstance(v, dict):
                continue
            pkt = v.get("packet") or {}
            key = (pkt.get("src"), pkt.get("dst"), parse_number(pkt.get("dport") or 0, "dport of a cloud verdict", 0, 65535),
                   pkt.get("proto"))
            verdicts.setdefault(key, []).append(v)
    return verdicts, errors


def _answered_by_destination(result):
    reply = result.get("reply") or {}
    if reply.get("sender_is_target") is not None:
        return bool(reply["sender_is_target"])
    sender = reply.get("sender")
    if sender is None:
        return reply.get("kind") in ("syn-ack", "rst", "udp")
    return sender == result.get("address")


def trace_targets(plan, probe_result, limit=30):
    """The flows of one source worth a trace: not open, one per (address, port, protocol), and
    not answered by the destination itself (a reset or an ICMP error from the destination shows
    the packet got there: the path is not in question and a trace would only cost time).  At most
    ``limit`` (an integer, 0 for none); a probe result of the wrong shape is an InputError naming the key."""
    limit = parse_number(limit, "limit", 0, 10 ** 6)
    result = _need(probe_result, dict, "probe_result", optional=True) or {}
    results = list(_dicts(result.get("results"), "probe_result.results"))
    for i, r in results:
        where = "probe_result.results[%d]" % i
        _need(r.get("address"), str, where + ".address", optional=True)
        _need(r.get("protocol"), str, where + ".protocol", optional=True)
        _need(r.get("port"), int, where + ".port", optional=True)
        _need(r.get("reply"), dict, where + ".reply", optional=True)
    out, seen = [], set()
    for dummy, r in results:
        if len(out) >= limit:
            break
        if r.get("state") == "open" or _answered_by_destination(r):
            continue
        key = (r.get("address"), r.get("port"), r.get("protocol"))
        if key in seen:
            continue
        seen.add(key)
        out.append({"address": r.get("address"), "port": r.get("port") if r.get("protocol") != "icmp" else None,
                    "protocol": r.get("protocol")})
    return out
