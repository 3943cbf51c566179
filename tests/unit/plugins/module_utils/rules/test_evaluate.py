# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import ipaddress
import json

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import iptables
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import model
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import nftables
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator, evaluate

from .helpers import nft, read, tcp


@pytest.mark.parametrize("packet,bad", [
    (dict(tcp("10.0.0.1", 80), dport=70000), "70000"),
    (dict(tcp("10.0.0.1", 80), dport="http"), "http"),
    (dict(tcp("10.0.0.1", 80), src="10.0.0.999"), "10.0.0.999"),
    (dict(tcp("10.0.0.1", 80), family="ipv6"), "10.200.1.10"),
    (dict(tcp("10.0.0.1", 80), proto="tcpx"), "tcpx"),
    (dict(tcp("10.0.0.1", 80), ct_state="sleepy"), "sleepy"),
    (dict(tcp("10.0.0.1", 80), colour="red"), "colour"),
    (dict(tcp("10.0.0.1", 80), proto="icmp"), "sport 40000 given for protocol icmp"),
    ({"family": "ipv4", "proto": "icmp", "src": "10.0.0.2", "dst": "10.0.0.1", "icmp_type": 999}, "999"),
    ({"family": "ipv4", "proto": "icmp", "src": "10.0.0.2", "dst": "10.0.0.1", "icmp_type": "echo-sideways"},
     "echo-sideways"),
])
def test_bad_packets_name_the_bad_value(packet, bad):
    with pytest.raises(InputError, match=bad):
        evaluate(model.new_ruleset(), packet)


def test_bad_path_and_bad_model():
    with pytest.raises(InputError, match="sideways"):
        evaluate(model.new_ruleset(), tcp("10.0.0.1", 80), path="sideways")
    broken = json.loads(json.dumps(nft("lab-nft-drop")))
    broken["tables"][0]["chains"][0]["rules"][0]["verdict"] = {"kind": "explode"}
    with pytest.raises(ParseError, match="explode"):
        Evaluator(broken)


def test_empty_ruleset_accepts():
    result = evaluate(model.new_ruleset(), tcp("10.0.0.1", 80))
    assert result["verdict"] == "accept" and result["rule"] is None and result["trace"] == []


# ----------------------------------------------------------------- property-based tests

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.sampled_from(
        ["ip", "inet", "tcp", "dport", "@s", "accept", "filter", "input", "x", "10.0.0.0"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["nftables", "table", "chain", "rule", "set", "family", "name", "table", "expr",
                         "match", "left", "right", "op", "payload", "protocol", "field", "hook", "prio",
                         "policy", "type", "elem", "vmap", "key", "data", "jump", "target", "reject"]),
        inner, max_size=4),
    max_leaves=25)


# Structurally wrong listings: a real capture (plus an ``element`` object) with one field of one
# object, or one statement of one rule, replaced by a value of the wrong type.  What each field
# must hold is written out here (libnftables-json(5)), independently of the parser.
_EXPECTED = {
    "metainfo": {"version": "str", "release_name": "str", "json_schema_version": "int"},
    "table": {"family": "str", "name": "str", "handle": "int"},
    "chain": {"family": "str", "table": "str", "name": "str", "handle": "int", "type": "str", "hook": "str",
              "policy": "str", "prio": "prio"},
    "rule": {"family": "str", "table": "str", "chain": "str", "handle": "int", "expr": "list", "comment": "str"},
    "set": {"family": "str", "table": "str", "name": "str", "handle": "int", "type": "strs", "flags": "strs",
            "elem": "list"},
    "map": {"family": "str", "table": "str", "name": "str", "handle": "int", "type": "strs", "map": "strs",
            "elem": "list"},
    "element": {"family": "str", "table": "str", "name": "str", "elem": "list"},
}
_ANY = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=6)
_WRONG_VALUE = {
    "str": _ANY.filter(lambda v: v is not None and not isinstance(v, str)),
    "int": _ANY.filter(lambda v: v is not None and (isinstance(v, bool) or not isinstance(v, int))),
    "list": _ANY.filter(lambda v: v is not None and not isinstance(v, list)),
    "strs": _ANY.filter(lambda v: v is not None and not isinstance(v, str) and not (
        isinstance(v, list) and all(isinstance(x, str) for x in v))),
    "prio": _ANY.filter(lambda v: v is not None and not isinstance(v, str) and (
        isinstance(v, bool) or not isinstance(v, int))),
}
# a statement that is not a one-key object, or a verdict statement whose argument has the wrong shape
_WRONG_STATEMENT = st.one_of(
    _ANY.filter(lambda v: not isinstance(v, dict)),
    st.dictionaries(st.sampled_from(["accept", "match", "counter", "jump"]), _ANY, min_size=2, max_size=3),
    st.builds(lambda k, v: {k: v}, st.sampled_from(["jump", "goto"]), _ANY.filter(
        lambda v: not (isinstance(v, dict) and isinstance(v.get("target"), str)))),
    st.builds(lambda k, v: {k: v}, st.sampled_from(["match", "vmap"]), _ANY.filter(lambda v: not isinstance(v, dict))),
    st.builds(lambda k, v: {k: v}, st.sampled_from(["reject", "dnat", "snat", "masquerade", "redirect"]),
              _ANY.filter(lambda v: v is not None and not isinstance(v, dict))),
)


def _capture_with_element():
    data = json.loads(read("nft", "hand.json"))
    data["nftables"].append({"element": {"family": "inet", "table": "filter", "name": "allowed_v4",
                                         "elem": ["10.202.0.1"]}})
    return data


@st.composite
def _structurally_wrong(draw):
    """(listing, what was broken): one field or one statement of the capture of the wrong type."""
    data = _capture_with_element()
    items = data["nftables"]
    if draw(st.booleans()):
        rules = [o["rule"] for o in items if "rule" in o]
        rule = draw(st.sampled_from(rules))
        pos = draw(st.integers(0, len(rule["expr"])))
        rule["expr"].insert(pos, draw(_WRONG_STATEMENT))
        return data, "statement %d" % (pos + 1)
    index = draw(st.sampled_from([i for i, o in enumerate(items) if next(iter(o)) in _EXPECTED]))
    (kind, body), = items[index].items()
    if draw(st.integers(0, 9)) == 0:  # the whole object
        items[index] = {kind: draw(_ANY.filter(lambda v: not isinstance(v, dict)))}
        return data, "item %d" % index
    field = draw(st.sampled_from(sorted(_EXPECTED[kind])))
    body[field] = draw(_WRONG_VALUE[_EXPECTED[kind][field]])
    return data, '"%s"' % field


@settings(max_examples=300, deadline=None)
@given(st.one_of(_JSON.map(lambda d: (d, None)), _structurally_wrong()))
def test_nft_parser_never_crashes_on_arbitrary_json(case):
    """Arbitrary JSON and structurally wrong listings: only ParseError, never a traceback; and a
    listing with a value of the wrong type is always refused, the message naming what is wrong."""
    data, broken = case
    try:
        rs = nftables.parse_nft_json({"nftables": data} if isinstance(data, list) else data)
    except ParseError as exc:
        if broken is not None:
            assert str(exc).startswith("nftables JSON: ") and broken in str(exc), str(exc)
        return
    assert broken is None, "accepted a listing with a wrong %s" % broken
    result = evaluate(rs, tcp("10.0.0.1", 80))
    assert result["verdict"] in ("accept", "drop", "reject", "indeterminate")


_MUTATIONS = st.lists(st.tuples(st.integers(0, 10 ** 6), st.sampled_from(
    ["", "{", "}", '"', "[", "]", ",", ":", "null", "0", "-1", '"x"'])), max_size=4)


@settings(max_examples=200, deadline=None)
@given(_MUTATIONS)
def test_nft_parser_never_crashes_on_mutated_capture(mutations):
    text = read("nft", "hand.json")
    for pos, insert in mutations:
        pos %= len(text)
        text = text[:pos] + insert + text[pos + 1:]
    try:
        rs = nftables.parse_nft_json(text)
    except ParseError:
        return
    assert evaluate(rs, tcp("10.200.2.10", 8082))["verdict"] in ("accept", "drop", "reject", "indeterminate")


_IPT_WORDS = st.sampled_from(["-A", "INPUT", "-p", "tcp", "-m", "--dport", "80", "!", "-s", "10.0.0.0/8", "-j",
                              "ACCEPT", "DROP", "REJECT", "--reject-with", "multiport", "--dports", "1:2",
                              "conntrack", "--ctstate", "NEW", "-i", "eth+", "\"", "-g", "X", ":X", "[0:0]"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_IPT_WORDS, max_size=10).map(" ".join), max_size=8))
def test_iptables_parser_never_crashes(lines):
    text = "*filter\n:INPUT ACCEPT [0:0]\n:X - [0:0]\n" + "\n".join(lines) + "\nCOMMIT\n"
    try:
        rs = iptables.parse_iptables_save(text)
    except ParseError:
        return
    assert evaluate(rs, tcp("10.0.0.1", 80))["verdict"] in ("accept", "drop", "reject", "indeterminate")


# A generated iptables INPUT chain against a straightforward first-match reference.
_RULE = st.fixed_dictionaries({
    "net": st.sampled_from([None, "10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/24", "10.1.2.3/32"]),
    "neg_net": st.booleans(),
    "ports": st.lists(st.integers(1, 40), min_size=1, max_size=3),
    "range": st.booleans(),
    "action": st.sampled_from(["ACCEPT", "DROP", "REJECT", "RETURN"]),
})


def _line(r):
    parts = ["-A", "INPUT"]
    if r["net"]:
        parts += (["!"] if r["neg_net"] else []) + ["-s", r["net"]]
    parts += ["-p", "tcp"]
    if r["range"]:
        lo, hi = min(r["ports"]), max(r["ports"])
        parts += ["-m", "tcp", "--dport", "%d:%d" % (lo, hi)]
    else:
        parts += ["-m", "multiport", "--dports", ",".join(map(str, r["ports"]))]
    return " ".join(parts + ["-j", r["action"]])


def _reference(rules, policy, src, dport):
    for r in rules:
        if r["net"]:
            inside = ipaddress.ip_address(src) in ipaddress.ip_network(r["net"])
            if inside == r["neg_net"]:
                continue
        ok = (min(r["ports"]) <= dport <= max(r["ports"])) if r["range"] else dport in r["ports"]
        if ok:
            return {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": policy}[r["action"]]
    return policy


@settings(max_examples=200, deadline=None)
@given(st.lists(_RULE, max_size=12), st.sampled_from(["ACCEPT", "DROP"]),
       st.sampled_from(["10.1.2.3", "10.9.9.9", "192.168.0.7", "172.16.0.1"]), st.integers(1, 41))
def test_generated_iptables_chain_matches_reference(rules, policy, src, dport):
    text = "*filter\n:INPUT %s [0:0]\n%s\nCOMMIT\n" % (policy, "\n".join(_line(r) for r in rules))
    rs = iptables.parse_iptables_save(text)
    result = evaluate(rs, tcp("10.0.0.1", dport, src=src))
    assert result["verdict"] == _reference(rules, policy.lower(), src, dport)
    saved = model.from_dict(json.loads(json.dumps(rs)))
    assert evaluate(saved, tcp("10.0.0.1", dport, src=src)) == result
