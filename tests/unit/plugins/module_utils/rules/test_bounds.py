# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounded work (issue 17): the limits on rules and set elements, large sets compiled and looked up
fast, and the fast paths (set lookups, line splitting) giving the answers of the plain ones."""
import gc
import ipaddress
import json
import random
import shlex
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import model
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.iptables import parse_iptables_save, split_line
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.nftables import parse_nft_json


# the same examples on every run (derived from the test, no example database), no time limit per example: a
# loaded 2-core CI machine cannot make them flaky
SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


def _address(i):
    n = i * 2654435761 % 2 ** 24  # scattered over 10.0.0.0/8, no two neighbours
    return "10.%d.%d.%d" % (n >> 16, n >> 8 & 255, n & 255)


def _nft_set(elements, key_type="ipv4_addr", field=("ip", "saddr"), extra=()):
    fam, table = "inet", "filter"
    return {"nftables": [
        {"table": {"family": fam, "name": table}},
        {"set": {"family": fam, "table": table, "name": "blocked", "type": key_type, "elem": elements}},
        *extra,
        {"chain": {"family": fam, "table": table, "name": "input", "type": "filter", "hook": "input", "prio": 0,
                   "policy": "accept"}},
        {"rule": {"family": fam, "table": table, "chain": "input", "handle": 4, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": field[0], "field": field[1]}}, "right": "@blocked"}},
            {"drop": None}]}}]}


def _pkt(src, dport=80):
    return {"family": "ipv6" if ":" in src else "ipv4", "src": src, "proto": "tcp", "dport": dport}


# ----------------------------------------------------------------- set size

def test_a_million_element_set_compiles_in_seconds_and_answers_right():
    elements = [_address(i) for i in range(model.MAX_SET_ELEMENTS)]  # exactly at the limit: read
    start = time.monotonic()
    ev = Evaluator(parse_nft_json(_nft_set(elements)))
    took = time.monotonic() - start
    assert took < 30, took   # about 1 s (bench/rules/bench_compile.py); generous for a loaded CI machine
    assert ev.evaluate(_pkt(elements[0]))["verdict"] == "drop"
    assert ev.evaluate(_pkt(elements[-1]))["verdict"] == "drop"
    assert ev.evaluate(_pkt(elements[500000]))["verdict"] == "drop"
    assert ev.evaluate(_pkt("192.168.1.1"))["verdict"] == "accept"
    assert ev.evaluate(_pkt(_address(model.MAX_SET_ELEMENTS)))["verdict"] == "accept"  # the next one is not in it


def test_a_set_over_the_limit_is_a_parse_error_naming_set_count_and_limit():
    with pytest.raises(ParseError) as exc:
        parse_nft_json(_nft_set(["10.0.0.1"] * (model.MAX_SET_ELEMENTS + 1)))
    assert str(exc.value) == ("set blocked of table inet filter holds 1,000,001 elements, more than the 1,000,000 "
                              "a set may hold (MAX_SET_ELEMENTS) in nft -j list ruleset")


def test_elements_added_later_count_towards_the_limit(monkeypatch):
    monkeypatch.setattr(model, "MAX_SET_ELEMENTS", 4)
    add = {"element": {"family": "inet", "table": "filter", "name": "blocked", "elem": ["10.0.0.3", "10.0.0.4"]}}
    rs = parse_nft_json(_nft_set(["10.0.0.1", "10.0.0.2"], extra=[add]))
    assert rs["tables"][0]["sets"]["blocked"]["elements"] == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
    with pytest.raises(ParseError, match="set blocked of table inet filter holds 5 elements, more than the 4"):
        parse_nft_json(_nft_set(["10.0.0.1", "10.0.0.2", "10.0.0.5"], extra=[add]))


def test_a_set_written_in_a_rule_over_the_limit_names_the_rule(monkeypatch):
    monkeypatch.setattr(model, "MAX_SET_ELEMENTS", 3)
    data = _nft_set([])
    data["nftables"][-1]["rule"]["expr"][0]["match"]["right"] = {"set": ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]}
    with pytest.raises(ParseError) as exc:
        parse_nft_json(data)
    assert 'rule 1 of chain "input" of table inet filter' in str(exc.value)
    assert "an anonymous set holds 4 elements, more than the 3 a set may hold (MAX_SET_ELEMENTS)" in str(exc.value)


def test_saved_facts_over_the_set_limit_name_the_set(monkeypatch):
    rs = parse_nft_json(_nft_set(["10.0.0.1", "10.0.0.2"]))
    Evaluator(json.loads(json.dumps(rs)))
    monkeypatch.setattr(model, "MAX_SET_ELEMENTS", 1)
    with pytest.raises(ParseError, match=r"tables\[0\].sets.blocked holds 2 elements, more than the 1 a set may hold"):
        Evaluator(json.loads(json.dumps(rs)))


# ----------------------------------------------------------------- rules per ruleset

def test_iptables_save_over_the_rule_limit_is_refused_before_it_is_read():
    text = "*filter\n:INPUT ACCEPT [0:0]\n" + "-A INPUT -p tcp --dport 80 -j ACCEPT\n" * (model.MAX_RULES + 1) + "COMMIT\n"
    start = time.monotonic()
    with pytest.raises(ParseError) as exc:
        parse_iptables_save(text, source="iptables-nft-save")
    assert str(exc.value) == "200,001 rules, more than the 200,000 a ruleset may hold (MAX_RULES) in iptables-nft-save"
    assert time.monotonic() - start < 10   # counted, not parsed


def test_nft_json_over_the_rule_limit_is_refused():
    data = _nft_set([])
    data["nftables"].extend([data["nftables"][-1]] * model.MAX_RULES)
    with pytest.raises(ParseError, match=r"^200,001 rules, more than the 200,000 a ruleset may hold \(MAX_RULES\) "
                                         r"in nft -j list ruleset$"):
        parse_nft_json(data)


def test_saved_facts_at_and_over_the_rule_limit(monkeypatch):
    monkeypatch.setattr(model, "MAX_RULES", 3)
    rule = {"matches": [], "statements": [], "verdict": {"kind": "accept"}, "origin": {"text": "accept"}}
    chain = {"name": "input", "hook": "input", "priority": 0, "policy": "drop", "rules": [rule, rule]}
    rs = {"tables": [{"backend": "nftables", "family": "inet", "name": "t", "chains": [chain, dict(chain, name="c")]}]}
    with pytest.raises(ParseError, match=r"^4 rules, more than the 3 a ruleset may hold \(MAX_RULES\) in rule model$"):
        Evaluator(json.loads(json.dumps(rs)))
    rs["tables"][0]["chains"][1]["rules"] = [rule]
    assert Evaluator(rs).evaluate(_pkt("10.0.0.1"))["verdict"] == "accept"


def test_reading_and_compiling_leave_the_garbage_collector_as_they_found_it():
    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\nCOMMIT\n"
    assert gc.isenabled()
    Evaluator(parse_iptables_save(text))
    assert gc.isenabled()
    with pytest.raises(ParseError):
        parse_iptables_save(text.replace("COMMIT\n", ""))
    assert gc.isenabled()
    gc.disable()
    try:
        Evaluator(parse_iptables_save(text))
        assert not gc.isenabled()
    finally:
        gc.enable()


# ----------------------------------------------------------------- lookups agree with plain membership

_V4 = st.builds(lambda a, b: "10.0.%d.%d" % (a, b), st.integers(0, 3), st.integers(0, 255))
_V6 = st.builds(lambda a: "fd00::%x" % a, st.integers(0, 1024))
_NET = st.one_of(
    _V4, _V6,
    st.builds(lambda a, n: "%s/%d" % (a, n), _V4, st.integers(22, 32)),
    st.builds(lambda a, n: "%s/%d" % (a, n), _V6, st.integers(118, 128)),
    st.builds(lambda a, b: "%s-%s" % (a, b), _V4, _V4))


def _span(value):
    if "-" in value:
        lo, hi = value.split("-")
        return ipaddress.ip_address(lo), ipaddress.ip_address(hi)
    net = ipaddress.ip_network(value, strict=False)
    return net.network_address, net.broadcast_address


def _in(address, value):
    lo, hi = _span(value)
    ip = ipaddress.ip_address(address)
    return ip.version == lo.version and lo <= ip <= hi


def _saddr_set(elements):
    return {"tables": [{"backend": "nftables", "family": "inet", "name": "t", "sets": {
        "s": {"name": "s", "keys": ["ipv4_addr"], "flags": ["interval"], "map": None, "elements": elements}},
        "chains": [{"name": "input", "hook": "input", "priority": 0, "policy": "accept", "rules": [
            {"matches": [{"key": "src", "set": "s"}], "verdict": {"kind": "drop"}, "origin": {"text": "drop @s"}}]}]}]}


@settings(max_examples=150, **SETTINGS)
@given(st.lists(_NET, max_size=30), st.lists(st.one_of(_V4, _V6), min_size=1, max_size=10))
def test_address_set_lookups_agree_with_membership(elements, probes):
    ev = Evaluator(_saddr_set(elements))
    for src in probes:
        expected = "drop" if any(_in(src, e) for e in elements) else "accept"
        assert ev.evaluate(_pkt(src))["verdict"] == expected, (src, elements)


def test_large_sets_use_the_sorted_arrays_and_agree_with_membership():
    """Over 4,096 single values go to a sorted array (a bisection per lookup) instead of a hash set."""
    rng = random.Random(17)
    addresses = sorted({"10.0.%d.%d" % (rng.randint(0, 63), rng.randint(0, 255)) for dummy in range(9000)})
    ranges = ["10.1.%d.0/24" % i for i in range(0, 256, 3)] + ["fd00::%x" % i for i in range(0, 3000, 7)]
    ev = Evaluator(_saddr_set(addresses + ranges))
    plain = Evaluator(_saddr_set(addresses))
    members = set(addresses)
    spans = [tuple(int(a) for a in _span(r)) for r in ranges]
    for dummy in range(2000):
        src = rng.choice(["10.0.%d.%d" % (rng.randint(0, 63), rng.randint(0, 255)),
                          "10.1.%d.%d" % (rng.randint(0, 255), rng.randint(0, 255)), "fd00::%x" % rng.randint(0, 3000)])
        n = int(ipaddress.ip_address(src))
        expected = src in members or any(lo <= n <= hi for (lo, hi), r in zip(spans, ranges) if (":" in r) == (":" in src))
        assert ev.evaluate(_pkt(src))["verdict"] == ("drop" if expected else "accept"), src
        if ":" not in src:
            assert plain.evaluate(_pkt(src))["verdict"] == ("drop" if src in members else "accept"), src


_PORT = st.one_of(st.integers(0, 100), st.builds(lambda a, n: [a, a + n], st.integers(0, 100), st.integers(0, 20)))


def _port_in(port, value):
    return value[0] <= port <= value[1] if isinstance(value, list) else port == value


@settings(max_examples=150, **SETTINGS)
@given(st.lists(st.tuples(st.one_of(_V4, st.builds(lambda a: a + "/30", _V4)), _PORT), max_size=20),
       st.lists(st.tuples(_V4, st.integers(0, 120)), min_size=1, max_size=10))
def test_concatenated_set_lookups_agree_with_membership(elements, probes):
    rs = _saddr_set([list(e) for e in elements])
    rs["tables"][0]["chains"][0]["rules"][0]["matches"][0]["key"] = ["src", "dport"]
    ev = Evaluator(rs)
    for src, port in probes:
        expected = any(_in(src, a) and _port_in(port, p) for a, p in elements)
        assert ev.evaluate(_pkt(src, port))["verdict"] == ("drop" if expected else "accept"), (src, port, elements)


_VERDICT = st.sampled_from([{"kind": "accept"}, {"kind": "drop"},
                            {"kind": "reject", "backend": "nftables", "type": "tcp reset"}])


@settings(max_examples=150, **SETTINGS)
@given(st.lists(st.tuples(_NET, _VERDICT), max_size=20), st.lists(st.one_of(_V4, _V6), min_size=1, max_size=10))
def test_verdict_map_takes_the_first_entry_holding_the_address(entries, probes):
    """nft refuses overlapping keys in a map; saved facts may hold them, and then the first entry decides."""
    rule = {"matches": [], "verdict": {"kind": "vmap", "key": "src", "map": [[k, v] for k, v in entries]},
            "origin": {"text": "vmap"}}
    rs = {"tables": [{"backend": "nftables", "family": "inet", "name": "t", "chains": [
        {"name": "input", "hook": "input", "priority": 0, "policy": "accept", "rules": [rule]}]}]}
    ev = Evaluator(rs)
    for src in probes:
        first = next((v["kind"] for k, v in entries if _in(src, k)), "accept")
        assert ev.evaluate(_pkt(src))["verdict"] == first, (src, entries)


# ----------------------------------------------------------------- splitting iptables-save lines

_LINE = st.lists(st.sampled_from(["-A", "INPUT", " ", "  ", "\t", '"', "'", "\\", "a b", '"x y"', "'z w'", '""', "--comment",
                                  "é", "\r", "#", "!", "-j", "DROP"]), max_size=14).map("".join)


@settings(max_examples=400, **SETTINGS)
@given(_LINE)
def test_lines_are_split_as_shlex_splits_them(line):
    try:
        expected = shlex.split(line)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)):
            split_line(line)
    else:
        assert split_line(line) == expected


def test_a_long_unclosed_quote_is_split_in_linear_time():
    line = "-A INPUT " + "a" * 20000 + ' -m comment --comment "never closed'
    start = time.monotonic()
    with pytest.raises(ValueError, match="No closing quotation"):
        split_line(line)
    assert time.monotonic() - start < 10
