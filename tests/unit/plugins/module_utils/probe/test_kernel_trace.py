"""The kernel trace's own parts on captured ``nft -a monitor trace`` output (tests/unit/fixtures/kernel_trace,
recorded in network namespaces: a destination with nftables and iptables-nft rules, a router that
forwards, a server behind it) and the table it loads."""
import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import kernel_trace as kt

from ...helpers import fixture


def _read(name):
    with open(fixture("kernel_trace", name)) as fh:
        return fh.read()


def test_each_packet_gets_the_rule_that_dropped_it():
    by_port = {r["port"]: r for r in kt.parse_monitor(_read("monitor-input.txt"))}
    assert sorted(by_port) == [80, 81, 82, 83, 84, 85]
    assert by_port[80]["verdict"] == "accept" and by_port[80]["decided_by"] is None
    d81 = by_port[81]["decided_by"]
    assert (d81["family"], d81["table"], d81["chain"], d81["handle"], d81["kind"]) == ("inet", "filter", "input", 3, "rule")
    assert d81["text"] == "tcp dport 81 drop"
    # a reject is a drop that answers; the rule text says which
    assert by_port[82]["verdict"] == "drop" and "reject with tcp reset" in by_port[82]["decided_by"]["text"]
    # a rule in a jumped-to chain is named in that chain
    assert (by_port[83]["decided_by"]["chain"], by_port[83]["decided_by"]["handle"]) == ("sub", 6)
    # an iptables-nft rule: the kernel shows its table, the counters are left out of the text
    d84 = by_port[84]["decided_by"]
    assert (d84["family"], d84["table"], d84["chain"]) == ("ip", "filter", "INPUT")
    assert "packets" not in d84["text"] and "counter" in d84["text"]
    # our own table's events are not part of the packet's story
    assert all(e["table"] != kt.TABLE for r in by_port.values() for e in r["events"])
    assert by_port[80]["src"] == "10.200.250.1" and by_port[80]["dst"] == "10.200.250.2" and by_port[80]["iif"] == "ndc1b"


def test_reached_tells_delivered_from_forwarded_from_stopped():
    router = {r["port"]: r for r in kt.parse_monitor(_read("monitor-router.txt"))}
    server = {r["port"]: r for r in kt.parse_monitor(_read("monitor-server.txt"))}
    assert router[90]["reached"] == "forward" and router[91]["reached"] is None
    assert router[91]["decided_by"]["chain"] == "forward"
    # the server never saw 91 (the router dropped it); it delivered 92 and dropped the others by policy
    assert 91 not in server
    assert server[92]["reached"] == "input" and server[92]["verdict"] == "accept"
    assert server[90]["decided_by"]["kind"] == "policy" and server[90]["decided_by"]["text"] == "policy drop"
    assert server[90]["reached"] is None


def test_truncated_or_foreign_output_is_skipped_not_a_crash():
    text = _read("monitor-input.txt")
    cut = text[: len(text) // 2].rsplit("\n", 1)[0] + "\ntrace id 1234 inet fil"
    records = kt.parse_monitor(cut + "\nsome other line\n")
    assert records and all(r["src"] == "10.200.250.1" for r in records)
    assert kt.parse_monitor("") == []


def test_the_table_selects_exactly_the_probes_packets():
    script = kt.table_script(kt.normalize_packets([
        {"src": "10.200.1.10", "dst": "10.200.2.20", "protocol": "tcp", "port": 8080},
        {"src": "fd00:200::10", "dst": "fd00:200::20", "protocol": "udp", "port": "53"}]))
    assert "ip saddr 10.200.1.10 ip daddr 10.200.2.20 tcp dport 8080 tcp flags syn / syn,ack meta nftrace set 1" in script
    assert "ip6 saddr fd00:200::10 ip6 daddr fd00:200::20 udp dport 53 meta nftrace set 1" in script
    # before conntrack and NAT; markers at the very end of input and forward
    assert "hook prerouting priority -350" in script
    assert "hook input priority 1000" in script and "hook forward priority 1000" in script
    # a stale table of an earlier run is replaced in the same transaction
    assert script.index("delete table inet netdiag_trace") < script.rindex("add table inet netdiag_trace")


@pytest.mark.parametrize("packets,needle", [
    ([], "non-empty list"),
    ([{"src": "10.0.0.1", "dst": "10.0.0.999", "port": 80}], "10.0.0.999"),
    ([{"src": "10.0.0.1", "dst": "fd00::1", "port": 80}], "different families"),
    ([{"src": "10.0.0.1", "dst": "10.0.0.2", "port": 70000}], "70000"),
    ([{"src": "10.0.0.1", "dst": "10.0.0.2", "port": "8\u00b2"}], "8\u00b2"),
    ([{"src": "10.0.0.1", "dst": "10.0.0.2", "port": 80, "protocol": "icmp"}], "icmp"),
    ([{"src": "10.0.0.1", "dst": "10.0.0.2", "port": p} for p in range(1, 300)], "at most 256"),
])
def test_bad_packets_are_refused_naming_the_value(packets, needle):
    with pytest.raises(InputError) as exc:
        kt.normalize_packets(packets)
    assert needle in str(exc.value)
