# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property-based tests of the controller planners (issue 17): the flow plan (``plan.make_plan``), the
trace targets (``plan.trace_targets``), the kernel trace plan (``kernel_plan.kernel_trace_plan``) and the
remediation plan (``open_ports``).

Any input, malformed ones included (wrong types, missing keys, huge ports, digits of other scripts), gives
a well-formed result or the library's own error (NetdiagError; AnsibleFilterError through the filters),
never a raw TypeError/KeyError/ValueError; and on well-formed input the plans keep their promises (every
flow once, ports in range, the same plan for the same input, in any order).  The examples are derived
from a fixed seed (``derandomize``), so a failure replays; inputs that once crashed are replayed first
(``CORPUS``)."""
import copy
import json
import socket

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.netdiag.reachability.plugins.filter import kernel as kernel_filter
from ansible_collections.netdiag.reachability.plugins.filter import open_ports as open_ports_filter
from ansible_collections.netdiag.reachability.plugins.filter import reachability as reachability_filter
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import parse_port_spec
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import PROBE_PROTOCOLS, REPORT_SCHEMA
from ansible_collections.netdiag.reachability.plugins.module_utils.probe.kernel_trace import MAX_PACKETS
from ansible_collections.netdiag.reachability.plugins.plugin_utils import kernel_plan, open_ports, plan

from ..helpers import fixture

SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def no_dns(loopback_only, monkeypatch):
    """Host names without an ansible_host do not resolve (the conftest's guard would fail the test instead)."""
    def getaddrinfo(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# ----------------------------------------------------------------- inputs

HOSTS = ["client", "web1", "web2", "db"]
GROUPS = {"all": HOSTS, "web": ["web1", "web2"], "ungrouped": ["client", "db"]}
ADDRESS = {"client": "10.200.1.10", "web1": "10.200.2.10", "web2": "10.200.2.11", "db": "10.200.3.10"}
HOSTVARS = {h: {"ansible_host": a} for h, a in ADDRESS.items()}

# values that break naive code: other scripts' digits, out of range, wrong types, huge numbers
_ODD = st.sampled_from([None, True, False, 0, -1, 1, 70000, 65536, 2 ** 64, 1.5, float("nan"), "", " ", "x", "80",
                        "70000", "8\u00b2", "\u0663", "\uff18\uff10", "80/tcp", "1-3/udp", "0/tcp", "icmp", "80/xyz",
                        "10.0.0.1", "fd00::1", "web", "client", "all", "open", "tcp", [], {}, [80], {"a": 1}, [None]])
_KEYS = st.sampled_from(["from", "to", "ports", "expect", "name", "results", "state", "address", "port", "protocol",
                         "reply", "flows", "gather", "sources", "ansible_host", "fix", "cause", "open_ports", "host",
                         "backend", "x"])
JUNK = st.recursive(_ODD, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                  st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=10)


def maybe(strategy):
    """A well-formed value most of the time, junk sometimes."""
    return st.one_of(strategy, strategy, strategy, JUNK)


_PORT_SPEC = st.one_of(st.integers(1, 65535), st.builds("{}/tcp".format, st.integers(1, 65535)),
                       st.builds(lambda a, n: "%d-%d/udp" % (a, a + n), st.integers(1, 65000), st.integers(0, 3)),
                       st.just("icmp"))
_NAMES = st.sampled_from(HOSTS + ["web"])
_DESTS = st.one_of(_NAMES, st.sampled_from(["10.9.0.1", "10.9.0.2", "10.200.2.11", "fd00::9"]))
FLOW = st.fixed_dictionaries({"from": st.one_of(_NAMES, st.lists(_NAMES, min_size=1, max_size=2)),
                              "to": st.one_of(_DESTS, st.lists(_DESTS, min_size=1, max_size=3)),
                              "ports": st.lists(_PORT_SPEC, min_size=1, max_size=3)},
                             optional={"expect": st.sampled_from(["open", "closed"]), "name": st.text(max_size=5)})
BAD_FLOW = st.fixed_dictionaries({}, optional={"from": maybe(_NAMES), "to": maybe(_DESTS),
                                               "ports": maybe(st.lists(maybe(_PORT_SPEC), max_size=3)),
                                               "expect": maybe(st.just("open")), "name": JUNK})


def _expected_keys(flows):
    """The (source, address, port, protocol) a list of flows asks for, worked out independently."""
    by_address = {a: h for h, a in ADDRESS.items()}
    keys = set()
    for flow in flows:
        sources = [flow["from"]] if isinstance(flow["from"], str) else flow["from"]
        dests = [flow["to"]] if isinstance(flow["to"], str) else flow["to"]
        for src in [m for s in sources for m in GROUPS.get(s, [s])]:
            for dest in dests:
                for host in GROUPS.get(dest, [dest]):
                    address = ADDRESS.get(host, host)
                    if by_address.get(address) == src:
                        continue
                    for spec in flow["ports"]:
                        if spec == "icmp":
                            keys.add((src, address, 0, "icmp"))
                            continue
                        p = parse_port_spec(spec, default_protocol="tcp")
                        keys.update((src, address, port, p["protocol"]) for port in range(p["first"], p["last"] + 1))
    return keys


def _key(flow):
    return flow["source"], flow["address"], flow["port"], flow["protocol"]


def _check_flow_plan(p, max_flows=plan.DEFAULT_MAX_FLOWS):
    """What every plan promises: ports in range, known hosts, no flow to itself, each flow once, probes and
    gather consistent with the flows."""
    assert set(p) == {"flows", "probes", "gather", "sources"}
    assert len(p["flows"]) <= max_flows   # none when every flow goes from a host to itself
    keys = [_key(f) for f in p["flows"]]
    assert len(keys) == len(set(keys))
    for f in p["flows"]:
        assert f["protocol"] in PROBE_PROTOCOLS
        assert isinstance(f["port"], int) and not isinstance(f["port"], bool)
        assert f["port"] == 0 if f["protocol"] == "icmp" else 1 <= f["port"] <= 65535
        assert f["source"] in GROUPS["all"] and f["destination"] in GROUPS["all"] + [None]
        assert f["source"] != f["destination"] and f["expect"] in ("open", "closed")
        assert f["source"] in p["gather"] and f["destination"] in p["gather"] + [None]
    assert p["sources"] == sorted({f["source"] for f in p["flows"]})
    probed = {(src, t["host"], port, t["protocol"]) for src, targets in p["probes"].items() for t in targets
              for port in (t.get("ports") or [0])}
    assert probed == set(keys)


# ----------------------------------------------------------------- the flow plan

@settings(max_examples=250, **SETTINGS)
@given(st.one_of(JUNK, st.lists(st.one_of(FLOW, BAD_FLOW, JUNK), max_size=3)),
       st.one_of(st.just(GROUPS), JUNK), st.one_of(st.just(HOSTVARS), JUNK),
       st.one_of(st.just(plan.DEFAULT_MAX_FLOWS), st.integers(-1, 10), _ODD))
def test_any_flows_give_a_plan_or_a_library_error(flows, groups, hostvars, max_flows):
    try:
        p = plan.make_plan(copy.deepcopy(flows), groups, hostvars, max_flows)
    except NetdiagError:
        p = None
    else:
        _check_flow_plan(p, int(max_flows))
    try:
        through_filter = reachability_filter.flow_plan(copy.deepcopy(flows), groups, hostvars, max_flows)
    except AnsibleFilterError as exc:
        assert str(exc).startswith("flow_plan: ")
    else:
        assert through_filter == p


@settings(max_examples=150, **SETTINGS)
@given(st.lists(FLOW, min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_every_flow_is_planned_once_the_same_way_in_any_order(flows, rng):
    p = plan.make_plan(copy.deepcopy(flows), GROUPS, HOSTVARS)
    _check_flow_plan(p)
    assert {_key(f) for f in p["flows"]} == _expected_keys(flows)
    assert plan.make_plan(copy.deepcopy(flows), GROUPS, HOSTVARS) == p          # deterministic
    shuffled = list(flows)
    rng.shuffle(shuffled)
    q = plan.make_plan(copy.deepcopy(shuffled), GROUPS, HOSTVARS)
    assert {_key(f) for f in q["flows"]} == {_key(f) for f in p["flows"]}
    assert set(q["gather"]) == set(p["gather"]) and q["sources"] == p["sources"]
    assert ({s: sorted(json.dumps(t, sort_keys=True) for t in ts) for s, ts in q["probes"].items()}
            == {s: sorted(json.dumps(t, sort_keys=True) for t in ts) for s, ts in p["probes"].items()})


def test_flows_over_max_flows_and_max_flows_from_extra_vars():
    flows = [{"from": "client", "to": "web1", "ports": ["8000-8009/tcp"]}]
    assert len(plan.make_plan(flows, GROUPS, HOSTVARS, "10")["flows"]) == 10   # -e reachability_max_flows=10 is text
    with pytest.raises(InputError, match="more than 9 flows"):
        plan.make_plan(flows, GROUPS, HOSTVARS, 9)
    with pytest.raises(InputError, match="invalid max_flows '\u0663': not a number"):
        plan.make_plan(flows, GROUPS, HOSTVARS, "\u0663")


# ----------------------------------------------------------------- trace targets

_REPLY = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "kind": st.sampled_from(["syn-ack", "rst", "icmp", "udp"]), "sender": st.sampled_from(["10.9.0.1", "10.9.0.254", None]),
    "sender_is_target": st.sampled_from([True, False, None])}))
RESULT = st.fixed_dictionaries({"address": st.sampled_from(["10.9.0.1", "10.9.0.2"]), "protocol": st.sampled_from(PROBE_PROTOCOLS),
                                "port": st.integers(1, 4), "state": st.sampled_from(["open", "closed", "filtered", None])},
                               optional={"reply": _REPLY})


@settings(max_examples=250, **SETTINGS)
@given(st.one_of(JUNK, st.fixed_dictionaries({"results": st.one_of(JUNK, st.lists(st.one_of(RESULT, JUNK), max_size=4))})),
       st.one_of(st.integers(0, 5), _ODD))
def test_any_probe_result_gives_targets_or_a_library_error(result, limit):
    try:
        targets = plan.trace_targets(None, copy.deepcopy(result), limit)
    except NetdiagError:
        with pytest.raises(AnsibleFilterError, match="^trace_targets: "):
            reachability_filter.trace_targets(copy.deepcopy(result), limit)
    else:
        assert len(targets) <= int(limit)
        assert reachability_filter.trace_targets(copy.deepcopy(result), limit) == targets


def _worth_a_trace(r):
    reply = r.get("reply") or {}
    if r["state"] == "open":
        return False
    if reply.get("sender_is_target") is not None:
        return not reply["sender_is_target"]
    if reply.get("sender") is None:
        return reply.get("kind") not in ("syn-ack", "rst", "udp")
    return reply["sender"] != r["address"]


@settings(max_examples=200, **SETTINGS)
@given(st.lists(RESULT, max_size=8), st.integers(0, 10), st.randoms(use_true_random=False))
def test_trace_targets_are_the_first_unanswered_flows_each_once(results, limit, rng):
    targets = plan.trace_targets(None, {"results": copy.deepcopy(results)}, limit)
    expected = []
    for r in results:
        t = {"address": r["address"], "port": None if r["protocol"] == "icmp" else r["port"], "protocol": r["protocol"]}
        key = (r["address"], r["port"], r["protocol"])
        if _worth_a_trace(r) and key not in [k for k, dummy in expected]:
            expected.append((key, t))
    assert targets == [t for dummy, t in expected][:limit]
    shuffled = list(results)
    rng.shuffle(shuffled)   # with room for all of them, the order of the results does not matter
    assert (sorted(map(json.dumps, plan.trace_targets(None, {"results": shuffled}, 10)))
            == sorted(json.dumps(t) for dummy, t in expected))


# ----------------------------------------------------------------- the kernel trace plan

_ROUTES = [{"dst": "0.0.0.0/0", "gateway": "10.200.1.1", "dev": "eth0", "type": "unicast", "family": "ipv4", "metric": 0}]
_LISTENERS = {"listeners": [], "sysctls": {}, "routes": _ROUTES,
              "interface_addresses": [{"interface": "eth0", "family": "ipv4", "address": "10.200.1.10", "prefix": 24}]}


@st.composite
def kernel_inputs(draw, junk=True):
    flows = draw(st.lists(FLOW, min_size=1, max_size=3))
    p = plan.make_plan(copy.deepcopy(flows), GROUPS, HOSTVARS)
    if not p["flows"]:
        p = plan.make_plan([{"from": "client", "to": "web", "ports": [80]}], GROUPS, HOSTVARS)
    hv = copy.deepcopy(HOSTVARS)
    for src in p["sources"]:
        results = []
        for f in p["flows"]:
            if f["source"] == src:
                state = draw(st.sampled_from(["open", "closed", "filtered"]))
                reply = draw(st.sampled_from([None, {"kind": "rst", "sender": f["address"]},
                                              {"kind": "icmp", "sender": "local", "sender_is_target": False}]))
                results.append({"address": f["address"], "port": f["port"], "protocol": f["protocol"], "state": state,
                                "reply": reply})
        hv[src]["reachability_probe"] = {"results": results}
        hv[src]["reachability_listeners"] = copy.deepcopy(_LISTENERS)
    if junk:
        where = draw(st.sampled_from(["none", "host", "listeners", "routes", "probe", "plan", "port", "prefix"]))
        host = draw(st.sampled_from(p["sources"]))
        bad = draw(JUNK)
        if where == "host":
            hv[host] = bad
        elif where == "listeners":
            hv[host]["reachability_listeners"] = bad
        elif where == "routes":
            hv[host]["reachability_listeners"]["routes"] = [dict(_ROUTES[0], **{draw(st.sampled_from(sorted(_ROUTES[0]))): bad})]
        elif where == "probe":
            hv[host]["reachability_probe"]["results"].append(bad)
        elif where == "plan":
            p[draw(st.sampled_from(["flows", "gather", "sources"]))] = bad
        elif where == "port":
            p["flows"][0]["port"] = bad
        elif where == "prefix":
            hv[host]["reachability_listeners"]["interface_addresses"][0]["prefix"] = bad
    limit = draw(st.one_of(st.integers(1, 5), _ODD)) if junk else draw(st.integers(1, 5))
    return p, hv, limit


@settings(max_examples=200, **SETTINGS)
@given(st.one_of(kernel_inputs(), st.tuples(JUNK, st.one_of(JUNK, st.just(HOSTVARS)), _ODD)))
def test_any_kernel_trace_input_gives_a_plan_or_a_library_error(args):
    p, hv, limit = args
    try:
        out = kernel_plan.kernel_trace_plan(copy.deepcopy(p), copy.deepcopy(hv), limit)
    except NetdiagError:
        out = None
    else:
        assert set(out) == {"hosts", "sources", "flows"} and len(out["flows"]) <= int(limit)
    try:
        through_filter = kernel_filter.kernel_trace_plan(copy.deepcopy(p), copy.deepcopy(hv), limit)
    except AnsibleFilterError as exc:
        assert str(exc).startswith("kernel_trace_plan: ")
    else:
        assert through_filter == out


@settings(max_examples=120, **SETTINGS)
@given(kernel_inputs(junk=False))
def test_the_kernel_trace_plan_traces_unanswered_flows_on_gathered_hosts(args):
    p, hv, limit = args
    out = kernel_plan.kernel_trace_plan(copy.deepcopy(p), copy.deepcopy(hv), limit)
    assert kernel_plan.kernel_trace_plan(copy.deepcopy(p), copy.deepcopy(hv), limit) == out
    assert len(out["flows"]) == len(set(out["flows"])) <= limit
    states = {(src, r["address"], r["port"], r["protocol"]): r for src in p["sources"]
              for r in hv[src]["reachability_probe"]["results"]}
    for label in out["flows"]:
        src, rest = label.split(" -> ")
        address, dummy, port_proto = rest.rpartition(":")
        port, proto = port_proto.split("/")
        r = states[(src, address, int(port), proto)]
        assert proto in ("tcp", "udp") and r["state"] != "open" and (r["reply"] or {}).get("sender") != "local"
    for host, packets in out["hosts"].items():
        assert host in p["gather"] and 0 < len(packets) <= MAX_PACKETS
        for pkt in packets:
            assert pkt["protocol"] in ("tcp", "udp") and 1 <= pkt["port"] <= 65535
    for src, targets in out["sources"].items():
        for t in targets:
            assert all("%s -> %s:%d/%s" % (src, t["host"], port, t["protocol"]) in out["flows"] for port in t["ports"])


# ----------------------------------------------------------------- remediation

_BACKEND = st.sampled_from(open_ports.BACKENDS)
RULE = st.fixed_dictionaries({"backend": _BACKEND, "ports": st.lists(st.one_of(
    st.builds("{}/tcp".format, st.integers(1, 65535)), st.builds("{}/udp".format, st.integers(1, 65535)),
    st.integers(1, 65535), st.builds(lambda a, n: "%d-%d/tcp" % (a, a + n), st.integers(1, 65000), st.integers(0, 9))),
    min_size=1, max_size=3)}, optional={"host": st.sampled_from(HOSTS), "state": st.just("present")})
BAD_RULE = st.fixed_dictionaries({"backend": maybe(_BACKEND)}, optional={
    key: JUNK for key in ("ports", "host", "zone", "source", "zone_source", "rich_rules", "state", "family", "table",
                          "chain", "forward_to", "verify_from", "verify_address")})


@settings(max_examples=250, **SETTINGS)
@given(st.one_of(JUNK, st.lists(st.one_of(RULE, BAD_RULE, JUNK), max_size=3)),
       st.one_of(st.none(), st.just(HOSTS), _ODD, JUNK))
def test_any_rules_are_normalised_or_refused_by_the_library(rules, hosts):
    try:
        out = open_ports.normalize_rules(copy.deepcopy(rules), hosts)
    except NetdiagError:
        with pytest.raises(AnsibleFilterError):
            open_ports_filter.open_ports_rules(copy.deepcopy(rules), hosts=hosts)
    else:
        assert open_ports.normalize_rules(out, hosts) == out     # a normalised rule is its own normal form
        for rule in out:
            for spec in rule["ports"]:
                p = parse_port_spec(spec, protocols=open_ports.BACKEND_PROTOCOLS[rule["backend"]])
                assert 1 <= p["first"] <= p["last"] <= 65535


def _report_flow():
    spec = st.fixed_dictionaries({"host": maybe(st.sampled_from(HOSTS)), "backend": maybe(_BACKEND),
                                  "ports": maybe(st.lists(st.sampled_from(["80/tcp", "53/udp", "8000-8010/tcp", "70000/tcp"]),
                                                          min_size=1, max_size=2))},
                                 optional={"zone": maybe(st.just("public")), "source": maybe(st.just("10.200.1.10")),
                                           "rich_rules": JUNK})
    fix = st.fixed_dictionaries({}, optional={"open_ports": maybe(spec), "summary": st.text(max_size=5),
                                              "commands": maybe(st.lists(st.fixed_dictionaries({"command": st.text(max_size=5)}),
                                                                         max_size=2)),
                                              "manual": st.booleans(), "cloud": JUNK})
    return st.fixed_dictionaries({"cause": maybe(st.sampled_from(["ok", "host_firewall", "path_block", "no_listener"])),
                                  "source": maybe(st.sampled_from(HOSTS)), "address": maybe(st.sampled_from(list(ADDRESS.values()))),
                                  "port": maybe(st.integers(1, 65535)), "protocol": maybe(st.sampled_from(["tcp", "udp"]))},
                                 optional={"destination": maybe(st.sampled_from(HOSTS)), "fix": maybe(fix),
                                           "source_address": maybe(st.just("10.200.1.10"))})


REPORT_FLOWS = st.lists(_report_flow(), max_size=4)


@settings(max_examples=250, **SETTINGS)
@given(st.one_of(JUNK, st.fixed_dictionaries({"schema": st.just(REPORT_SCHEMA), "version": st.just(1),
                                              "flows": st.one_of(JUNK, REPORT_FLOWS)})),
       st.one_of(st.just(HOSTS), JUNK), st.one_of(st.none(), JUNK), st.booleans())
def test_any_report_gives_a_remediation_plan_or_a_library_error(report, play_hosts, inventory, routers):
    try:
        out = open_ports.plan_from_report(copy.deepcopy(report), play_hosts, inventory, routers=routers)
    except NetdiagError:
        with pytest.raises(AnsibleFilterError):
            open_ports_filter.open_ports_plan(copy.deepcopy(report), play_hosts, inventory)
    else:
        assert set(out) == {"rules", "cloud", "hosts", "manual", "ok"}
        assert all(r["host"] in play_hosts for r in out["rules"])


@settings(max_examples=200, **SETTINGS)
@given(st.one_of(st.none(), st.fixed_dictionaries({"schema": st.just(REPORT_SCHEMA), "version": st.just(1),
                                                   "flows": st.one_of(JUNK, REPORT_FLOWS)})),
       st.one_of(st.none(), st.lists(RULE, max_size=2), JUNK), st.one_of(st.just(HOSTS), JUNK),
       st.one_of(st.none(), JUNK), st.one_of(st.none(), st.just("web1"), JUNK), st.one_of(st.none(), st.just(["web1"]), JUNK))
def test_any_remediate_run_gives_a_plan_or_a_library_error(report, rules, inventory, hosts, limit, limit_hosts):
    try:
        out = open_ports.plan_run(copy.deepcopy(report), copy.deepcopy(rules), inventory, hosts, limit, limit_hosts)
    except NetdiagError:
        with pytest.raises(AnsibleFilterError):
            open_ports_filter.open_ports_run_plan(copy.deepcopy(report), copy.deepcopy(rules), inventory, hosts, limit,
                                                  limit_hosts)
    else:
        assert set(out["hosts"]) == {r["host"] for r in out["rules"] + out["cloud"]}


def _seeds_report():
    with open(fixture("open_ports", "seeds-report.json")) as fh:
        return json.load(fh)


SEED_HOSTS = ["client", "fwd-nft", "fwd-ipt", "ufw", "nft-drop", "ipt-reject", "ipt-legacy", "healthy", "dns", "loopback",
              "router"]


def _comparable(out):
    return ({json.dumps(dict(r, ports=sorted(r["ports"])), sort_keys=True) for r in out["rules"]},
            sorted(json.dumps(m, sort_keys=True) for m in out["manual"]), out["ok"], set(out["hosts"]))


@settings(max_examples=60, **SETTINGS)
@given(st.randoms(use_true_random=False), st.booleans())
def test_the_seeds_report_gives_the_same_plan_in_any_order(rng, routers):
    report = _seeds_report()
    out = open_ports.plan_from_report(copy.deepcopy(report), SEED_HOSTS, SEED_HOSTS, routers=routers)
    assert open_ports.plan_from_report(copy.deepcopy(report), SEED_HOSTS, SEED_HOSTS, routers=routers) == out
    # every flow of the report is accounted for: ok, a rule that opens its port on its host, or a manual action
    for flow in report["flows"]:
        if flow["cause"] == "ok":
            continue
        spec = (flow.get("fix") or {}).get("open_ports") or {}
        ruled = any(r["host"] == spec.get("host") and set(spec.get("ports") or ["-"]) <= set(r["ports"]) for r in out["rules"])
        listed = any(m["flow"] == open_ports._flow_name(flow) for m in out["manual"])
        assert ruled or listed, flow
    assert out["ok"] == sum(1 for f in report["flows"] if f["cause"] == "ok")
    rng.shuffle(report["flows"])
    assert _comparable(open_ports.plan_from_report(report, SEED_HOSTS, SEED_HOSTS, routers=routers)) == _comparable(out)


# ----------------------------------------------------------------- inputs that once crashed

# each escaped as a raw Python error (the exception it was, in the comment) before the checks at the boundary
CORPUS = [
    # make_plan: groups None (AttributeError), a hostvars entry that is a list (AttributeError)
    ("flow_plan", ([{"from": "client", "to": "web1", "ports": [80]}], None, {}), "groups must be a dict, got NoneType None"),
    ("flow_plan", ([{"from": "client", "to": "web1", "ports": [80]}], GROUPS, {"web1": ["10.0.0.1"]}),
     "hostvars['web1'] must be a dict, got list ['10.0.0.1']"),
    # max_flows as text from extra vars (TypeError), in another script's digits
    ("flow_plan", ([{"from": "client", "to": "web1", "ports": [80]}], GROUPS, HOSTVARS, "\u0663"),
     "invalid max_flows '\u0663': not a number"),
    # trace_targets: a result that is not a dict (AttributeError), an unhashable port (TypeError), a limit that
    # is not a number (ValueError through the filter) or in Arabic-Indic digits (read as 3)
    ("trace_targets", ({"results": [None]}, 30), "probe_result.results[0] must be a dict, got NoneType None"),
    ("trace_targets", ({"results": [{"port": {}}]}, 30), "probe_result.results[0].port must be an integer, got dict {}"),
    ("trace_targets", ({"results": []}, "abc"), "invalid limit 'abc': not a number"),
    ("trace_targets", ({"results": []}, "\u0663"), "invalid limit '\u0663': not a number"),
    ("trace_targets", ({"results": 5}, 30), "probe_result.results must be a list, got int 5"),
    # kernel_trace_plan: a host's variables that are a list (AttributeError), a route metric that is text (TypeError),
    # a plan flow port that is a list (TypeError)
    ("kernel_trace_plan", ({"flows": [], "gather": ["web1"], "sources": []}, {"web1": [1]}, 64),
     "hostvars['web1'] must be a dict, got list [1]"),
    ("kernel_trace_plan", ({"flows": [], "gather": ["web1"], "sources": []},
                           {"web1": {"reachability_listeners": {"routes": [dict(_ROUTES[0], metric="x")]}}}, 64),
     "hostvars['web1'].reachability_listeners.routes[0].metric must be an integer, got str 'x'"),
    ("kernel_trace_plan", ({"flows": [{"source": "a", "address": "10.0.0.1", "port": [80], "protocol": "tcp"}],
                            "gather": [], "sources": ["a"]}, {}, 64), "plan.flows[0].port must be an integer, got list [80]"),
    # an interface prefix that is not a number (ValueError, also through the explain filter) or in other digits (read as 3)
    ("host_facts", ({"ansible_facts": {"interfaces": ["eth0"], "eth0": {"ipv4": {"address": "10.0.0.1", "prefix": "abc"}}}},),
     "invalid prefix of eth0 address 10.0.0.1 'abc': not a number"),
    ("host_facts", ({"ansible_facts": {"interfaces": ["eth0"], "eth0": {"ipv4": {"address": "10.0.0.1", "prefix": "\u0663"}}}},),
     "invalid prefix of eth0 address 10.0.0.1 '\u0663': not a number"),
    # plan_from_report: a flow that is not a dict, a fix that is text, open_ports that is true, a flow with a
    # destination and no address (AttributeError, KeyError), play hosts that are a number (TypeError)
    ("plan_from_report", ({"schema": REPORT_SCHEMA, "version": 1, "flows": [None]}, HOSTS),
     "the report: flows[0] must be a dict, got None"),
    ("plan_from_report", ({"schema": REPORT_SCHEMA, "version": 1, "flows": [{"cause": "listener", "fix": "x/y"}]}, HOSTS),
     "the report: flows[0].fix must be a dict, got str 'x/y'"),
    ("plan_from_report", ({"schema": REPORT_SCHEMA, "version": 1, "flows": [
        {"cause": "path_block", "fix": {"open_ports": True}}]}, HOSTS),
     "the report: flows[0].fix.open_ports must be a dict, got bool True"),
    ("plan_from_report", ({"schema": REPORT_SCHEMA, "version": 1, "flows": [
        {"cause": "host_firewall", "destination": "web1", "fix": {"summary": "s"}}]}, HOSTS), None),
    ("plan_from_report", ({"schema": REPORT_SCHEMA, "version": 1, "flows": []}, 5),
     "play_hosts must be a list of host names, got 5"),
    ("plan_from_report", ({"schema": REPORT_SCHEMA, "version": 1, "flows": [{"cause": "security_group", "fix": {
        "cloud": [{"provider": "aws", "rule": {"rule_number": "abc"}}]}}]}, HOSTS),
     "the report: flows[0].fix.cloud[0].rule: invalid rule_number 'abc': not a number"),
    # normalize_rules: inventory hosts that are a number (TypeError) or one string (a rule's host matched any part of it)
    ("normalize_rules", ([{"backend": "ufw", "ports": ["80/tcp"], "host": "client"}], 5),
     "the inventory hosts must be a list of host names, got 5"),
    ("normalize_rules", ([{"backend": "ufw", "ports": ["80/tcp"], "host": "cli"}], "client"),
     "the inventory hosts must be a list of host names, got 'client'"),
    # plan_run: --limit hosts and inventory hosts that are numbers (TypeError)
    ("plan_run", (None, [{"backend": "ufw", "ports": ["80/tcp"]}], HOSTS, None, "web1", 5),
     "the hosts of --limit must be a list of host names, got 5"),
    ("plan_run", (None, [{"backend": "ufw", "ports": ["80/tcp"]}], 5), "the inventory hosts must be a list of host names, got 5"),
]

_CALLS = {
    "flow_plan": (plan.make_plan, reachability_filter.flow_plan),
    "trace_targets": (lambda r, limit: plan.trace_targets(None, r, limit), reachability_filter.trace_targets),
    "kernel_trace_plan": (kernel_plan.kernel_trace_plan, kernel_filter.kernel_trace_plan),
    "host_facts": (plan.host_facts,
                   lambda hv: reachability_filter.explain({"flows": [], "gather": ["h"], "sources": []}, {"h": hv})),
    "normalize_rules": (open_ports.normalize_rules, lambda rules, hosts: open_ports_filter.open_ports_rules(rules, hosts=hosts)),
    "plan_from_report": (open_ports.plan_from_report, open_ports_filter.open_ports_plan),
    "plan_run": (open_ports.plan_run, open_ports_filter.open_ports_run_plan),
}


# the explain filter checks the gathered variables first (plan.check_hostvars): it names the key path instead
FILTER_SAYS = {
    "invalid prefix of eth0 address 10.0.0.1 'abc': not a number":
        "explain: invalid input: invalid hostvars['h'].ansible_facts.eth0.ipv4.prefix 'abc': not a number",
    "invalid prefix of eth0 address 10.0.0.1 '\u0663': not a number":
        "explain: invalid input: invalid hostvars['h'].ansible_facts.eth0.ipv4.prefix '\u0663': not a number",
}


@pytest.mark.parametrize("target, args, message", CORPUS, ids=["%s-%d" % (c[0], i) for i, c in enumerate(CORPUS)])
def test_inputs_that_once_crashed_give_the_library_error(target, args, message):
    library, wrapper = _CALLS[target]
    if message is None:   # it crashed; now it plans (the flow is listed as a manual action)
        out = library(*copy.deepcopy(args))
        assert [m["flow"] for m in out["manual"]] == ["? -> web1 (None) None/None"]
        return
    with pytest.raises(InputError) as exc:
        library(*copy.deepcopy(args))
    assert message in str(exc.value)
    if wrapper is not None:   # the filter says the same, or (checking first) at least where
        with pytest.raises(AnsibleFilterError) as exc:
            wrapper(*copy.deepcopy(args))
        assert FILTER_SAYS.get(message, message.split(" must ")[0]) in str(exc.value)
