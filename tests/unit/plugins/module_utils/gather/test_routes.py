"""Routes read from captured iproute2 JSON and /proc/net/route (a namespace with a blackhole,
an unreachable and a prohibit route), and the lookup the explainer uses."""
import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils.gather import routes as r

from ...helpers import fixture as fixture_path


def fixture(name):
    with open(fixture_path(name)) as fh:
        return fh.read()


def _v4():
    return r.parse_ip_json(fixture("routes/ip-j-4-route-blackhole.json"), "ipv4")


def test_ip_json_gives_every_route_with_its_type():
    got = {(x["dst"], x["type"]) for x in _v4()}
    assert got == {("0.0.0.0/0", "unicast"), ("10.200.1.10/32", "blackhole"), ("10.200.2.0/24", "unicast"),
                   ("10.200.8.0/24", "prohibit"), ("10.200.9.0/24", "unreachable")}
    default = r.lookup(_v4(), "10.200.3.3")
    assert default["gateway"] == "10.200.2.1" and default["dev"] == "d0"


@pytest.mark.parametrize("address,kind", [("10.200.1.10", "blackhole"), ("10.200.1.11", "unicast"),
                                          ("10.200.8.1", "prohibit"), ("10.200.9.200", "unreachable"),
                                          ("10.200.2.99", "unicast")])
def test_longest_prefix_wins(address, kind):
    assert r.lookup(_v4(), address)["type"] == kind


def test_ipv6_routes_and_a_family_mismatch():
    v6 = r.parse_ip_json(fixture("routes/ip-j-6-route.json"), "ipv6")
    assert r.lookup(v6, "fd00:200::9")["dev"] == "d0" and r.lookup(v6, "2001:db8::1")["gateway"] == "fd00:200::1"
    assert r.lookup(v6, "10.200.1.10") is None and r.lookup(_v4(), "fd00:200::9") is None


def test_proc_net_route_marks_routes_without_a_device_as_discarding():
    got = {(x["dst"], x["type"]) for x in r.parse_proc_net_route(fixture("routes/proc-net-route-blackhole.txt"))}
    assert ("10.200.1.10/32", "blackhole") in got and ("10.200.9.0/24", "unreachable") in got
    assert ("0.0.0.0/0", "unicast") in got


def test_policy_rules_besides_the_defaults_are_found():
    assert r.policy_rules(fixture("routes/ip-j-rule-default.json")) == []
    assert [x["table"] for x in r.policy_rules(fixture("routes/ip-j-rule-policy.json"))] == ["100"]


@pytest.mark.parametrize("text,needle", [("not json", "not JSON"), ('{"dst": 1}', "expected a list"),
                                         ('[{"gateway": "x"}]', "without dst"), ('[{"dst": "10.0.0.0/99"}]', "bad dst")])
def test_malformed_route_json_is_a_parse_error_naming_it(text, needle):
    with pytest.raises(ParseError, match=needle):
        r.parse_ip_json(text, "ipv4")


def test_read_routes_without_ip_falls_back_to_proc_and_says_so(tmp_path):
    (tmp_path / "proc" / "net").mkdir(parents=True)
    (tmp_path / "proc" / "net" / "route").write_text(fixture("routes/proc-net-route-blackhole.txt"))
    got = r.read_routes(str(tmp_path), run=lambda argv: None)
    assert got["read_with"] == "/proc/net/route" and "no ip command" in got["warnings"][0]
    assert r.lookup(got["routes"], "10.200.1.10")["type"] == "blackhole"
