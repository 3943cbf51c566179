"""The kernel_trace module as a user calls it, in a private network namespace (never this machine's firewall):
bad packets fail naming the bad value and add nothing, check mode adds nothing, a stop where nothing runs says
so. (Real traces, the watchdog and concurrent runs are tested on the lab: tests/integration/test_kernel_trace.py.)"""
import pytest

from .. import helpers
from ..helpers import run_module

pytestmark = pytest.mark.skipif(not helpers.private_namespaces_work(), reason="needs root (network namespaces)")
PACKET = {"src": "10.200.1.10", "dst": "10.200.2.18", "protocol": "tcp", "port": 80}
NO_TABLE = "nft list table inet netdiag_trace >/dev/null 2>&1 && { echo 'table left' >&2; exit 1; } || true"


@pytest.mark.parametrize("args,needle", [
    ({"packets": [dict(PACKET, dst="10.200.2.999")]}, "10.200.2.999"),
    ({"packets": [dict(PACKET, port=70000)]}, "70000"),
    ({"packets": [PACKET], "timeout": 2}, "timeout must be 5-3600 seconds"),
    ({}, "packets is required with state=present"),
])
def test_bad_input_fails_naming_it_and_adds_nothing(args, needle):
    res = run_module("kernel_trace", args, prefix=helpers.private_namespaces())
    assert res.get("failed") and needle in res["msg"], res


def test_check_mode_adds_nothing_and_says_what_it_would_trace():
    res = run_module("kernel_trace", {"packets": [PACKET]}, check_mode=True,
                     prefix=helpers.private_namespaces(setup=NO_TABLE))
    assert res["changed"] and res["table"] == "inet netdiag_trace" and res["packets"] == [PACKET], res


def test_a_stop_where_no_trace_runs_returns_nothing_and_changes_nothing():
    res = run_module("kernel_trace", {"state": "absent", "grace": 0}, prefix=helpers.private_namespaces())
    assert not res.get("failed") and not res["changed"] and res["traces"] == [] and res["removed"], res
