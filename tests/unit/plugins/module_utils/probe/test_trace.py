"""The trace verdict, from hop observations (no network)."""
import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.probe import trace as T
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError


def hops(*answers):
    out = []
    for ttl, res in enumerate(answers, 1):
        h = T._Hop(ttl)
        h.result = res
        out.append(h)
    return out


TE = {"reply": "time-exceeded", "address": "10.200.1.1", "icmp_type": 11, "icmp_code": 0, "icmp_name": "time-exceeded"}


def verdict(*answers, proto="tcp", port=80):
    return T._verdict("t", "10.200.2.10", 4, proto, port, hops(*answers))


def test_reached_open_and_hops_after_the_answer_are_dropped():
    v = verdict(TE, {"reply": "syn-ack", "rtt_ms": 1.0}, {"reply": "syn-ack"})
    assert (v["verdict"], v["state"], v["destination_ttl"], len(v["hops"])) == ("reached", "open", 2, 2)
    assert v["hops"][1]["address"] == "10.200.2.10"


def test_router_reject_is_placed_where_the_router_answered_time_exceeded():
    rej = dict(TE, reply="icmp", icmp_type=3, icmp_code=13, icmp_name="destination-unreachable/admin-prohibited")
    v = verdict(TE, rej)
    assert v["verdict"] == "rejected" and v["reached"] is False
    assert v["blocking_hop"] == {"ttl": 1, "address": "10.200.1.1", "how": "destination-unreachable/admin-prohibited",
                                 "is_target": False, "probe_ttl": 2}
    assert "router 10.200.1.1 (hop 1)" in v["reason"]


def test_target_reject_reaches_the_host():
    rej = {"reply": "icmp", "address": "10.200.2.10", "icmp_type": 3, "icmp_code": 3, "icmp_name": "x"}
    v = verdict(TE, rej)
    assert v["verdict"] == "rejected" and v["reached"] is True and v["blocking_hop"]["is_target"] is True


def test_udp_port_unreachable_from_target_is_closed():
    rej = {"reply": "icmp", "address": "10.200.2.10", "icmp_type": 3, "icmp_code": 3, "icmp_name": "x"}
    v = verdict(TE, rej, proto="udp", port=53)
    assert (v["verdict"], v["state"]) == ("reached", "closed")


def test_silence_after_the_last_answering_hop():
    v = verdict(TE, None, {"reply": None})
    assert v["verdict"] == "silent_after_hop"
    assert v["blocking_hop"] == {"ttl": 1, "address": "10.200.1.1", "how": "silence"}
    assert v["last_responding_hop"] == {"ttl": 1, "address": "10.200.1.1"}


def test_nothing_at_all():
    assert verdict(None, None)["verdict"] == "silent"


@pytest.mark.parametrize("kwargs,needle", [
    ({"port": 70000}, "70000"),
    ({"port": None}, "needs a port"),
    ({"port": 80, "protocol": "sctp"}, "sctp"),
    ({"port": 80, "max_hops": 0}, "max_hops"),
    ({"port": 80, "timeout": "abc"}, "abc"),
])
def test_bad_input_names_the_value(kwargs, needle):
    with pytest.raises(InputError, match=needle):
        T.trace("127.0.0.1", **kwargs)


def test_unresolvable_name():
    with pytest.raises(InputError, match="no-such-host.invalid"):
        T.trace("no-such-host.invalid", port=80)
