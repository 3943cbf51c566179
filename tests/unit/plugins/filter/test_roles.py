"""The filters the roles compute with (plugins/filter/roles.py): what a user reads in the run -
the ports still blocked, the failure message, what is reverted, what was changed, the audit's mismatches."""
import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.reachability.plugins.filter import roles
from ansible_collections.netdiag.reachability.plugins.filter.roles import (
    open_ports_firewalld_messages, open_ports_outcome, open_ports_still_blocked,
    open_ports_verify_failure, report_mismatches)


def test_every_filter_is_exported_and_documented():
    import os
    from ..helpers import ROOT
    names = roles.FilterModule().filters()
    assert set(names) == {"report_mismatches", "open_ports_still_blocked", "open_ports_verify_failure",
                          "open_ports_firewalld_messages", "open_ports_outcome"}
    assert [n for n in names if not os.path.exists(os.path.join(ROOT, "plugins", "filter", n + ".yml"))] == []


def _flow(address, port, cause, matches):
    return {"address": address, "port": port, "cause": cause, "matches_expect": matches}


@pytest.mark.parametrize("flows,expected", [
    ([], []),
    ([_flow("10.200.2.10", 80, "ok", True)], []),
    ([_flow("10.200.2.10", 80, "ok", True), _flow("10.200.2.10", 9999, "no_listener", False),
      _flow("10.200.2.13", 22, "ok", False)],
     ["10.200.2.10 9999 no_listener", "10.200.2.13 22 ok"]),
    ([_flow("fd00:200:2::10", None, "host_firewall", False)], ["fd00:200:2::10 None host_firewall"]),  # icmp
])
def test_report_mismatches_names_each_flow_that_differs_in_report_order(flows, expected):
    assert report_mismatches({"summary": {}, "flows": flows}) == expected


def _probe(*results):
    return {"results": [dict(port=port, state=state, **({"reply": reply} if reply != "absent" else {}))
                        for port, state, reply in results]}


@pytest.mark.parametrize("results,expected", [
    ([(80, "open", {"kind": "syn-ack"})], []),
    ([(80, "closed", {"kind": "rst"})], []),                     # a reset from the host: the firewall let it in
    ([(80, "filtered", None)], [80]),                            # silence
    ([(80, "filtered", "absent")], [80]),
    ([(80, "filtered", {"kind": "icmp"})], [80]),                # an ICMP error: still blocked
    # silent ports first, then the ones answered with something else, each in probe order
    ([(81, "filtered", {"kind": "icmp"}), (82, "filtered", None), (83, "open", None), (84, "closed", {"kind": "rst"}),
      (85, "filtered", "absent")], [82, 85, 81]),
    ([], []),
])
def test_open_ports_still_blocked(results, expected):
    assert open_ports_still_blocked(_probe(*results)) == expected


@pytest.mark.parametrize("backend,result,tail", [
    ("firewalld", {"zone": "public"},
     "after opening them in firewalld zone public: the runtime change was reverted and nothing was made permanent."),
    ("ufw", None, "after allowing them in ufw: the change was reverted."),
    ("nftables", {"commands": ["nft insert rule inet filter input position 2 tcp dport 80 accept",
                               "nft insert rule inet filter input position 2 tcp dport 443 accept"]},
     "after inserting nft insert rule inet filter input position 2 tcp dport 80 accept; "
     "nft insert rule inet filter input position 2 tcp dport 443 accept: the rules were removed again."),
    ("iptables-legacy", {"commands": ["iptables -I INPUT 1 -p tcp --dport 80 -j ACCEPT"]},
     "after inserting iptables -I INPUT 1 -p tcp --dport 80 -j ACCEPT: the rules were removed again."),
])
def test_open_ports_verify_failure_says_what_was_done_and_undone(backend, result, tail):
    rule = {"backend": backend, "verify_from": "client", "ports": ["80/tcp", "443/tcp"]}
    assert open_ports_verify_failure([80, 443], rule, "10.200.2.11", result) == (
        "client still cannot reach 80, 443 on 10.200.2.11 " + tail)


RUNTIME = {"changed": True, "msg": "zone public: added 80/tcp (runtime)", "notes": ["runtime only"]}
PERMANENT = {"changed": True, "msg": "zone public: added 80/tcp (permanent)", "notes": ["firewalld was stopped"]}
UNCHANGED = {"changed": False, "msg": "nothing to do", "notes": ["ignored"]}
SKIPPED = {"changed": False, "skipped": True}


@pytest.mark.parametrize("runtime,permanent,expected", [
    (RUNTIME, PERMANENT, [RUNTIME["msg"], PERMANENT["msg"], "firewalld was stopped"]),  # runtime notes are not kept
    (RUNTIME, UNCHANGED, [RUNTIME["msg"]]),
    (SKIPPED, PERMANENT, [PERMANENT["msg"], "firewalld was stopped"]),                # offline: permanent only
    ({}, dict(PERMANENT, notes=[]), [PERMANENT["msg"]]),
    (UNCHANGED, UNCHANGED, []),
])
def test_open_ports_firewalld_messages(runtime, permanent, expected):
    assert open_ports_firewalld_messages(runtime, permanent) == expected


def test_open_ports_outcome_per_host_with_the_rules_not_applied_and_the_manual_actions():
    not_applied = {"host": "nft-drop", "backend": "nftables", "ports": ["80/tcp"], "commands": ["nft insert ..."],
                   "why": "open_ports_allow_raw_rules is false"}
    hostvars = {"fwd-nft": {"open_ports_changed": ["zone public: added 80/tcp"], "open_ports_not_applied": []},
                "nft-drop": {"open_ports_changed": [], "open_ports_not_applied": [not_applied]},
                "ufw": {}}                                       # failed before the role set anything
    manual = [{"host": "router", "action": "allow 80/tcp in the forward chain"}]
    assert open_ports_outcome(["fwd-nft", "nft-drop", "ufw"], hostvars, manual) == {
        "changed": {"fwd-nft": ["zone public: added 80/tcp"], "nft-drop": [], "ufw": []},
        "rules_not_applied": [not_applied],
        "manual_actions": manual}
    assert open_ports_outcome([], hostvars) == {"changed": {}, "rules_not_applied": [], "manual_actions": []}


@pytest.mark.parametrize("call", [
    lambda: report_mismatches(["not", "a", "report"]),
    lambda: open_ports_still_blocked("probe"),
    lambda: open_ports_verify_failure("80", {"backend": "ufw"}, "h"),
])
def test_wrong_input_types_are_named(call):
    with pytest.raises(AnsibleFilterError, match="must be a"):
        call()
