"""plan: flows against the inventory, and gathered Ansible facts turned into the explainer's host facts."""
import pytest

from ansible_collections.netdiag.reachability.plugins.plugin_utils import plan
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError

# the shape ansible.builtin.setup (gather_subset network) returns, for a dual-stack host with two links
DUAL_STACK = {
    "interfaces": ["lo", "eth0", "eth1"],
    "default_ipv4": {"interface": "eth0", "address": "10.200.1.10"},
    "default_ipv6": {"interface": "eth0", "address": "fd00:200:1::10"},
    "all_ipv4_addresses": ["10.200.1.10", "10.200.9.10"],
    "all_ipv6_addresses": ["fd00:200:1::10", "fe80::a8b0:66ff:fe92:c96a", "fd00:200:9::10"],
    "lo": {"ipv4": {"address": "127.0.0.1", "prefix": "8"}, "ipv6": [{"address": "::1", "prefix": "128", "scope": "host"}]},
    "eth0": {"ipv4": {"address": "10.200.1.10", "prefix": "24"},
             "ipv6": [{"address": "fd00:200:1::10", "prefix": "64", "scope": "global"},
                      {"address": "fe80::a8b0:66ff:fe92:c96a", "prefix": "64", "scope": "link"}]},
    "eth1": {"ipv4": {"address": "10.200.9.10", "prefix": "24"},
             "ipv6": [{"address": "fd00:200:9::10", "prefix": "64", "scope": "global"}]},
}


def test_host_facts_keep_both_families_and_skip_link_local():
    facts = plan.host_facts({"ansible_host": "10.200.1.10", "ansible_facts": DUAL_STACK})
    assert "fd00:200:9::10" in facts["addresses"] and "10.200.9.10" in facts["addresses"]
    assert not any(a.startswith("fe80") for a in facts["addresses"])
    assert {(i["name"], i["address"]) for i in facts["interfaces"]} == {
        ("eth0", "10.200.1.10"), ("eth0", "fd00:200:1::10"), ("eth1", "10.200.9.10"), ("eth1", "fd00:200:9::10")}


@pytest.mark.parametrize("destination,source", [
    ("10.200.9.50", "10.200.9.10"),          # on eth1's subnet
    ("10.200.2.10", "10.200.1.10"),          # routed: the default route's interface
    ("fd00:200:9::50", "fd00:200:9::10"),    # on eth1's IPv6 subnet
    ("fd00:200:2::10", "fd00:200:1::10"),    # routed IPv6: the IPv6 default, never an IPv4 address
])
def test_the_source_address_is_the_one_the_kernel_would_pick(destination, source):
    facts = plan.host_facts({"ansible_facts": DUAL_STACK})
    assert plan.source_address(facts, destination) == source


def test_an_ipv4_only_host_has_no_ipv6_source():
    v4 = {k: v for k, v in DUAL_STACK.items() if k not in ("default_ipv6", "all_ipv6_addresses")}
    v4 = dict(v4, eth0={"ipv4": DUAL_STACK["eth0"]["ipv4"]}, eth1={"ipv4": DUAL_STACK["eth1"]["ipv4"]})
    facts = plan.host_facts({"ansible_facts": v4})
    assert plan.source_address(facts, "fd00:200:2::10") is None
    assert plan.source_address(facts, "10.200.2.10") == "10.200.1.10"


def test_flows_expand_against_groups_and_addresses():
    groups = {"all": ["client", "web1", "web2"], "web": ["web1", "web2"]}
    hostvars = {"client": {"ansible_host": "10.200.1.10"}, "web1": {"ansible_host": "10.200.2.10"},
                "web2": {"ansible_host": "10.200.2.11"}}
    p = plan.make_plan([{"from": "client", "to": ["web", "10.200.2.11", "10.200.7.7"], "ports": ["80/tcp", "53/udp"]}],
                       groups, hostvars)
    assert {(f["destination"], f["address"], f["port"], f["protocol"]) for f in p["flows"]} == {
        ("web1", "10.200.2.10", 80, "tcp"), ("web1", "10.200.2.10", 53, "udp"),
        ("web2", "10.200.2.11", 80, "tcp"), ("web2", "10.200.2.11", 53, "udp"),   # once, not twice
        (None, "10.200.7.7", 80, "tcp"), (None, "10.200.7.7", 53, "udp")}
    assert p["sources"] == ["client"] and set(p["gather"]) == {"client", "web1", "web2"}


@pytest.mark.parametrize("flows,needle", [
    ([{"from": "client", "to": "nowhere", "ports": ["80/tcp"]}], "'nowhere'"),
    ([{"from": "client", "to": "web1", "ports": ["70000/tcp"]}], "70000"),
    ([{"from": "client", "to": "web1", "ports": ["80/tcp"], "expect": "maybe"}], "maybe"),
    ([{"from": "client", "to": "web1", "ports": ["80/tcp"], "colour": "red"}], "colour"),
])
def test_bad_flows_name_the_bad_value(flows, needle):
    groups = {"all": ["client", "web1"]}
    with pytest.raises(InputError) as exc:
        plan.make_plan(flows, groups, {"client": {}, "web1": {}})
    assert needle in str(exc.value)


def _trace(address, port, verdict="silent_after_hop"):
    return {"target": address, "address": address, "port": port, "protocol": "tcp", "verdict": verdict,
            "hops": [{"ttl": 1, "address": "10.200.1.1", "reply": "time-exceeded"}],
            "blocking_hop": {"ttl": 1, "address": "10.200.1.1", "how": "silence"}}


@pytest.mark.parametrize("registered", [
    # one trace call with targets (the role since all of a source's flows are traced at once)
    {"results": [_trace("10.200.2.10", 8081), {"target": "10.200.2.99", "port": 80, "protocol": "tcp",
                                               "verdict": None, "error": "cannot resolve"}],
     "elapsed_s": 3.0, "reprobes": 0},
    # a loop of single traces (registered by roles before that, or by hand)
    {"results": [dict(_trace("10.200.2.10", 8081), item={"address": "10.200.2.10", "port": 8081, "protocol": "tcp"}),
                 {"failed": True, "msg": "x", "item": {"address": "10.200.2.99", "port": 80, "protocol": "tcp"}}]},
])
def test_each_flow_gets_its_own_trace_from_either_shape(registered):
    flows = {"flows": [{"from": "client", "to": ["10.200.2.10", "10.200.2.99"], "ports": ["8081/tcp", "80/tcp"]}]}
    groups = {"all": ["client"]}
    hv = {"client": {"ansible_host": "10.200.1.10"}}
    p = plan.make_plan(flows["flows"], groups, hv)
    hv["client"]["reachability_traces"] = registered
    assembled, dummy = plan.assemble(p, hv)
    by_flow = {(f["address"], f["port"]): f["trace"] for f in assembled}
    assert by_flow[("10.200.2.10", 8081)]["verdict"] == "silent_after_hop"
    assert by_flow[("10.200.2.10", 80)] is None and by_flow[("10.200.2.99", 80)] is None
    assert by_flow[("10.200.2.99", 8081)] is None


# the same dual-stack host as listeners_info / host_info return it (interface_addresses and routes)
DUAL_STACK_GATHERED = {
    "listeners": [], "sysctls": {},
    "routes": [{"family": "ipv4", "dst": "0.0.0.0/0", "type": "unicast", "gateway": "10.200.1.1", "dev": "eth0", "metric": 0},
               {"family": "ipv6", "dst": "::/0", "type": "unicast", "gateway": "fd00:200:1::1", "dev": "eth0", "metric": 1024},
               {"family": "ipv4", "dst": "10.200.9.0/24", "type": "unicast", "gateway": None, "dev": "eth1", "metric": 0}],
    "interface_addresses": [
        {"interface": "lo", "family": "ipv4", "address": "127.0.0.1", "prefix": 8, "scope": "host", "secondary": False},
        {"interface": "lo", "family": "ipv6", "address": "::1", "prefix": 128, "scope": "host", "secondary": False},
        {"interface": "eth0", "family": "ipv4", "address": "10.200.1.10", "prefix": 24, "scope": "global", "secondary": False},
        {"interface": "eth0", "family": "ipv6", "address": "fd00:200:1::10", "prefix": 64, "scope": "global", "secondary": False},
        {"interface": "eth0", "family": "ipv6", "address": "fe80::a8b0:66ff:fe92:c96a", "prefix": 64, "scope": "link",
         "secondary": False},
        {"interface": "eth1", "family": "ipv4", "address": "10.200.9.10", "prefix": 24, "scope": "global", "secondary": False},
        {"interface": "eth1", "family": "ipv6", "address": "fd00:200:9::10", "prefix": 64, "scope": "global", "secondary": False},
    ]}


def test_gathered_addresses_give_the_facts_setup_gives():
    from_setup = plan.host_facts({"ansible_host": "10.200.1.10", "ansible_facts": DUAL_STACK})
    gathered = plan.host_facts({"ansible_host": "10.200.1.10", "reachability_listeners": DUAL_STACK_GATHERED})
    assert gathered["addresses"] == from_setup["addresses"]
    assert sorted(map(sorted, (i.items() for i in gathered["interfaces"]))) == \
        sorted(map(sorted, (i.items() for i in from_setup["interfaces"])))
    for dest in ("10.200.9.99", "10.200.2.10", "fd00:200:9::99", "fd00:300::1"):
        assert plan.source_address(gathered, dest) == plan.source_address(from_setup, dest)


def test_gathered_addresses_win_over_setup_facts_and_cached_facts_are_read():
    stale = dict(DUAL_STACK, all_ipv4_addresses=["10.9.9.9"])
    facts = plan.host_facts({"ansible_facts": stale, "reachability_listeners": DUAL_STACK_GATHERED})
    assert "10.9.9.9" not in facts["addresses"] and "10.200.9.10" in facts["addresses"]
    # a fact cache gives set_fact(cacheable) variables back inside ansible_facts
    cached = plan.host_facts({"ansible_facts": {"reachability_listeners": DUAL_STACK_GATHERED}})
    assert cached["addresses"] == facts["addresses"] and cached["routes"] == DUAL_STACK_GATHERED["routes"]


def test_a_secondary_ipv4_address_is_the_hosts_but_not_its_interface_address():
    gathered = dict(DUAL_STACK_GATHERED, interface_addresses=DUAL_STACK_GATHERED["interface_addresses"] + [
        {"interface": "eth0", "family": "ipv4", "address": "10.200.1.11", "prefix": 24, "scope": "global", "secondary": True}])
    facts = plan.host_facts({"reachability_listeners": gathered})
    assert "10.200.1.11" in facts["addresses"]
    assert [i["address"] for i in facts["interfaces"] if i["name"] == "eth0" and ":" not in i["address"]] == ["10.200.1.10"]


def test_a_destination_whose_ansible_host_is_a_name_gets_its_address(monkeypatch):
    # ansible_host is often a DNS name: flows go to the address it resolves to on the controller
    # (IPv4 first), and a name that does not resolve is an error naming the host
    import socket as socket_mod
    answers = {"web1.example": [(socket_mod.AF_INET6, 1, 6, "", ("fd00::10", 0, 0, 0)),
                                (socket_mod.AF_INET, 1, 6, "", ("10.200.2.10", 0))]}

    def fake(name, *_args, **_kwargs):
        if name not in answers:
            raise socket_mod.gaierror(-2, "Name or service not known")
        return answers[name]

    monkeypatch.setattr(plan.socket, "getaddrinfo", fake)
    monkeypatch.setattr(plan, "_RESOLVED", {})
    groups = {"all": ["client", "web1", "web2"]}
    hv = {"client": {"ansible_host": "10.200.1.10"}, "web1": {"ansible_host": "web1.example"},
          "web2": {"ansible_host": "nowhere.example"}}
    p = plan.make_plan([{"from": "client", "to": "web1", "ports": [80]}], groups, hv)
    assert [(f["destination"], f["address"]) for f in p["flows"]] == [("web1", "10.200.2.10")]
    with pytest.raises(InputError) as exc:
        plan.make_plan([{"from": "client", "to": "web2", "ports": [80]}], groups, hv)
    assert "web2" in str(exc.value) and "nowhere.example" in str(exc.value)


def test_a_kernel_trace_replaced_by_another_run_is_not_used_and_says_why():
    start = {"changed": True, "packets": [{"src": "10.200.1.10", "dst": "10.200.2.18", "protocol": "tcp", "port": 80}],
             "run": "aaaa"}
    replaced = {"changed": False, "traces": [], "removed": False, "replaced": True}
    facts = plan.kernel_trace_facts({"reachability_kernel_trace_start": start, "reachability_kernel_trace_result": replaced})
    assert facts == {"error": "another run's kernel trace replaced this one on the host: its evidence is not used"}
    busy = {"failed": True, "msg": "another kernel trace (run bbbb) is active on this host until 18:30:00; ..."}
    assert "run bbbb" in plan.kernel_trace_facts({"reachability_kernel_trace_start": busy})["error"]


@pytest.mark.parametrize("family, address, prefix, ok", [
    ("ipv4", "10.200.1.10", 32, True), ("ipv4", "10.200.1.10", 33, False), ("ipv4", "10.200.1.10", 64, False),
    ("ipv6", "fd00:200:1::10", 128, True), ("ipv6", "fd00:200:1::10", 129, False)])
def test_an_interface_prefix_longer_than_its_family_has_is_an_error_naming_it(family, address, prefix, ok):
    entry = {"interface": "eth0", "family": family, "address": address, "prefix": prefix, "scope": "global",
             "secondary": False}
    gathered = dict(DUAL_STACK_GATHERED, interface_addresses=[entry])
    hostvars = {"web01": {"reachability_listeners": gathered}}
    if ok:
        plan.check_hostvars(hostvars, ["web01"])
        assert plan.host_facts(hostvars["web01"])["interfaces"][0]["prefix"] == prefix
        return
    with pytest.raises(InputError) as exc:
        plan.check_hostvars(hostvars, ["web01"])
    assert "prefix" in str(exc.value) and str(prefix) in str(exc.value)
    with pytest.raises(InputError) as exc:
        plan.host_facts(hostvars["web01"])
    assert address in str(exc.value) and str(prefix) in str(exc.value)


def test_a_read_that_failed_this_run_is_named_and_older_facts_are_not_used():
    """host_info (facts: true) sets no facts when it fails: its registered failure names the host's gather error,
    and facts a fact cache still holds from an earlier run are not taken for this run's."""
    hv = {"reachability_host_read": {"failed": True, "msg": "sudo: a password is required"},
          "ansible_facts": {"reachability_listeners": DUAL_STACK_GATHERED}}
    facts = plan.host_facts(hv)
    assert facts["gather_errors"] == ["listeners: sudo: a password is required", "firewall: sudo: a password is required"]
    assert "listeners" not in facts and "interfaces" not in facts
    # a read that was skipped (the host was read already) changes nothing
    facts = plan.host_facts({"reachability_host_read": {"skipped": True}, "reachability_listeners": DUAL_STACK_GATHERED})
    assert "gather_errors" not in facts and facts["listeners"] == []
