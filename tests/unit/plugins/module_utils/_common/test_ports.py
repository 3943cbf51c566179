import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common import ports


@pytest.mark.parametrize("spec,expected", [
    ("80/tcp", {"first": 80, "last": 80, "protocol": "tcp"}),
    ("8000-8010/tcp", {"first": 8000, "last": 8010, "protocol": "tcp"}),
    ("53/UDP", {"first": 53, "last": 53, "protocol": "udp"}),
    (" 5060/sctp ", {"first": 5060, "last": 5060, "protocol": "sctp"}),
])
def test_parse_port_spec(spec, expected):
    assert ports.parse_port_spec(spec) == expected


@pytest.mark.parametrize("spec,needle", [
    ("70000/tcp", "70000"),
    ("0/tcp", "'0'"),
    ("abc/tcp", "abc"),
    ("80/icmp", "icmp"),
    ("90-80/tcp", "90 is greater than 80"),
    ("80", "no protocol"),
    ("", "expected PORT"),
    (None, "expected PORT"),
])
def test_bad_specs_name_the_value(spec, needle):
    with pytest.raises(InputError) as exc:
        ports.parse_port_spec(spec)
    assert needle in str(exc.value)


def test_default_protocol_and_expansion():
    assert ports.expand_port_specs(["80", "79-81/tcp", "53/udp"], default_protocol="tcp") == [
        (80, "tcp"), (79, "tcp"), (81, "tcp"), (53, "udp")]


def test_expansion_limit():
    with pytest.raises(InputError, match="more than 100 ports"):
        ports.expand_port_specs(["1-65535/tcp"], limit=100)


def test_parse_port_rejects_bool():
    with pytest.raises(InputError):
        ports.parse_port(True)
