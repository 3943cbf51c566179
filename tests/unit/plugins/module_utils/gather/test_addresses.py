"""Interface addresses from captured ``ip -j address show`` and ``/proc/net/if_inet6`` outputs (lab
router and client namespaces), and the fallback without ``ip``."""
import os

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils.gather import addresses as A

FIX = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "addresses")


def fixture(name):
    with open(os.path.join(FIX, name)) as fh:
        return fh.read()


def test_router_addresses_both_families_with_scope():
    got = A.parse_ip_json(fixture("router-ip-j-address-show.json"))
    v4 = [(a["interface"], a["address"], a["prefix"]) for a in got if a["family"] == "ipv4"]
    assert v4 == [("lo", "127.0.0.1", 8), ("br-front", "10.200.1.1", 24), ("br-back", "10.200.2.1", 24),
                  ("mgmt0", "10.200.255.2", 30)]
    links = [a for a in got if a["family"] == "ipv6" and a["scope"] == "link"]
    assert links and all(a["address"].startswith("fe80:") and a["prefix"] == 64 for a in links)
    assert {"interface": "lo", "family": "ipv6", "address": "::1", "prefix": 128, "scope": "host",
            "secondary": False} in got


def test_secondary_addresses_are_marked():
    text = ('[{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.0.5", "prefixlen": 24, "scope": "global"},'
            ' {"family": "inet", "local": "10.0.0.6", "prefixlen": 24, "scope": "global", "secondary": true},'
            ' {"family": "inet6", "local": "fd00::5", "prefixlen": 64, "scope": "global"}]}]')
    got = A.parse_ip_json(text)
    assert [(a["address"], a["secondary"]) for a in got] == [("10.0.0.5", False), ("10.0.0.6", True), ("fd00::5", False)]


def test_if_inet6_fallback():
    got = A.parse_if_inet6(fixture("router-if_inet6"))
    assert {"interface": "lo", "family": "ipv6", "address": "::1", "prefix": 128, "scope": "host",
            "secondary": False} in got
    assert {a["scope"] for a in got} == {"host", "link"}
    ref = {(a["interface"], a["address"]) for a in A.parse_ip_json(fixture("router-ip-j-address-show.json"))
           if a["family"] == "ipv6"}
    assert {(a["interface"], a["address"]) for a in got} == ref


@pytest.mark.parametrize("text,needle", [("{", "not JSON"), ('{"a": 1}', "expected a list"), ("[{}]", "without ifname"),
                                         ('[{"ifname": "x", "addr_info": [{"family": "inet", "local": "1.2.3"}]}]', "1.2.3")])
def test_bad_ip_output_is_a_parse_error(text, needle):
    with pytest.raises(ParseError, match=needle):
        A.parse_ip_json(text)


def test_without_ip_the_fallback_says_so(tmp_path):
    inet6 = tmp_path / "if_inet6"
    inet6.write_text(fixture("router-if_inet6"))
    v4 = [{"interface": "eth0", "family": "ipv4", "address": "10.0.0.5", "prefix": 24, "scope": "global", "secondary": False}]
    got = A.read_addresses(run=lambda argv: None, if_inet6=str(inet6), ioctl_v4=lambda names: list(v4))
    assert got["read_with"] == "ioctl + /proc/net/if_inet6"
    assert got["addresses"][0] == v4[0] and any(a["address"] == "::1" for a in got["addresses"])
    assert "secondary IPv4 addresses not seen" in got["warnings"][0]


def test_this_hosts_loopback_through_the_ioctl_fallback():
    got = A._ioctl_v4(["lo"])
    assert got == [{"interface": "lo", "family": "ipv4", "address": "127.0.0.1", "prefix": 8, "scope": "host",
                    "secondary": False}]
