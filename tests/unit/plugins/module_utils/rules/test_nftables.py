# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import copy
import json

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import model
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import nftables
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator, evaluate

from .helpers import nft, read, tcp

HOST = "10.200.2.10"


def code(result):
    return None if result["reply"] is None else result["reply"].get("code", result["reply"]["kind"])


# (packet, path, verdict, reply code/kind, text of the deciding rule)
HAND = [
    (tcp(HOST, 22), "input", "accept", None, None),
    (tcp(HOST, 80), "input", "accept", None, None),                      # ip saddr @allowed_v4 (interval set)
    (tcp(HOST, 8010), "input", "accept", None, None),                    # anonymous set with a range
    (tcp(HOST, 80, src="10.201.0.5"), "input", "accept", None, None),    # range element of the named set
    (tcp(HOST, 80, src="10.201.0.10"), "input", "drop", None, None),     # just outside it: policy drop
    (tcp(HOST, 443), "input", "accept", None, None),                     # concatenation set
    (tcp("10.200.2.11", 443), "input", "drop", None, None),              # concatenation: wrong daddr
    (tcp(HOST, 8081), "input", "drop", None, "tcp dport vmap @port_verdicts"),
    (tcp(HOST, 8082), "input", "reject", 13, "reject with icmpx admin-prohibited"),
    (tcp(HOST, 9000), "input", "reject", "rst", "tcp dport 9000 reject with tcp reset"),
    (dict(tcp(HOST, 9001), proto="udp"), "input", "reject", 3, "udp dport 9001 reject"),
    (tcp(HOST, 9002), "input", "reject", 10, "tcp dport 9002 reject with icmp host-prohibited"),
    (tcp(HOST, 9003), "input", "reject", 13, "tcp dport 9003 reject with icmpx admin-prohibited"),
    (tcp(HOST, 9005), "input", "drop", None, 'tcp dport 9005 log prefix "nine-five " drop'),
    (tcp(HOST, 3306, iif="veth-a"), "input", "accept", None, None),      # vmap jump, accept in from_a
    (tcp(HOST, 5432, iif="veth-a"), "input", "drop", None, None),        # from_a returns: policy
    (tcp(HOST, 5432, iif="veth-b"), "input", "accept", None, None),      # vmap goto
    (tcp(HOST, 22, src="10.66.3.4"), "input", "drop", None, "ip saddr 10.66.0.0/16 drop"),  # prio -300 table
    (tcp(HOST, 1234, ct_state="established"), "input", "accept", None, None),
    (tcp(HOST, 1234, ct_state="invalid"), "input", "drop", None, "ct state invalid drop"),
    (tcp(HOST, 1234, mark=1), "input", "accept", None, None),
    (tcp(HOST, 8081), "forward", "drop", None, "ip daddr 10.200.2.10 tcp dport 8081 drop"),
    (tcp(HOST, 8082), "forward", "reject", 13, None),
    (tcp(HOST, 25), "output", "drop", None, "tcp dport 25 drop"),
]


@pytest.mark.parametrize("packet,path,verdict,reply,text", HAND)
def test_hand_written_ruleset(packet, path, verdict, reply, text):
    result = evaluate(nft("hand"), packet, path=path)
    assert result["verdict"] == verdict, result
    assert code(result) == reply
    if text is not None:
        assert result["rule"]["text"] == text
    if verdict == "drop" and text is None:
        assert result["policy"] is True and result["rule"] is None


def test_icmp_types_and_ipv6_reject():
    rs = nft("hand")
    ping = {"family": "ipv4", "proto": "icmp", "src": "10.1.1.1", "dst": HOST, "iif": "eth0"}
    assert evaluate(rs, ping)["verdict"] == "accept"
    assert evaluate(rs, dict(ping, icmp_type="timestamp-request"))["verdict"] == "drop"
    v6 = {"family": "ipv6", "proto": "tcp", "src": "fd00::5", "dst": "fd00::1", "dport": 9004, "iif": "eth0"}
    result = evaluate(rs, v6)
    assert result["reply"]["family"] == "ipv6" and result["reply"]["code"] == 1


def test_origin_and_trace():
    result = evaluate(nft("hand"), tcp(HOST, 8082))
    assert result["rule"] == {"backend": "nftables", "family": "inet", "table": "filter", "chain": "rej_admin",
                              "handle": 30, "text": "reject with icmpx admin-prohibited"}
    assert [o["text"] for o in result["trace"]] == ["tcp dport vmap @port_verdicts", "reject with icmpx admin-prohibited"]
    assert result["chain"]["hook"] == "input" and result["hooks"] == ["prerouting", "input"]


def test_dnat_rewrites_the_destination_before_routing():
    rs = nft("hand")
    result = evaluate(rs, tcp("10.200.1.1", 8080, oif="veth-c"), local_addresses=["10.200.1.1"])
    assert result["nat"]["dst"] == HOST and result["nat"]["dport"] == 80
    assert result["hooks"] == ["prerouting", "forward", "postrouting"]
    assert result["verdict"] == "accept"
    # without the out-interface the masquerade rule in postrouting cannot be decided: say so
    result = evaluate(rs, tcp("10.200.1.1", 8080), local_addresses=["10.200.1.1"])
    assert result["verdict"] == "indeterminate" and "oif" in result["reason"]


def test_rule_text_comes_from_the_listing_or_is_rendered():
    with_text = nft("hand")
    without = nft("hand", with_text=False)
    texts = [r["origin"]["text"] for _t, _c, r in model.iter_rules(with_text)]
    assert "ip saddr @allowed_v4 tcp dport { 80, 8000-8010 } accept" in texts
    rendered = [r["origin"]["text"] for _t, _c, r in model.iter_rules(without)]
    assert "tcp dport 22 counter accept" in rendered
    assert "reject with icmpx admin-prohibited" in rendered


# ----------------------------------------------------------------- firewalld-generated rulesets

@pytest.mark.parametrize("fixture", ["lab-fwd-nft", "scratch-firewalld-nft"])
def test_firewalld_nftables_backend(fixture):
    ev = Evaluator(nft(fixture))
    ok = ev.evaluate(tcp("10.200.2.11", 8000, iif="veth-fw"))
    assert ok["verdict"] == "accept"
    assert ev.evaluate(tcp("10.200.2.11", 22, iif="veth-fw"))["verdict"] == "accept"
    closed = ev.evaluate(tcp("10.200.2.11", 80, iif="veth-fw"))
    # LAB-NOTES: a closed firewalld (nftables) zone answers ICMP 3/13
    assert closed["verdict"] == "reject" and closed["reply"]["code"] == 13
    assert closed["rule"]["chain"] == "filter_IN_public" and closed["rule"]["table"] == "firewalld"
    assert closed["rule"]["text"] == "reject with icmpx admin-prohibited"
    assert any(o["text"] == "jump filter_INPUT_ZONES" for o in closed["trace"])
    # return traffic is accepted by the ct state rule before any zone
    est = ev.evaluate(tcp("10.200.2.11", 80, ct_state="established"))
    assert est["verdict"] == "accept" and est["trace"][0]["text"] == "ct state { established, related } accept"


def test_firewalld_zones_sources_interfaces_and_rich_rules():
    ev = Evaluator(nft("scratch-firewalld-nft"))
    rich = ev.evaluate(tcp("10.200.2.11", 8443, src="10.200.1.50", iif="veth-fw"))
    assert rich["verdict"] == "reject" and rich["reply"]["code"] == 10
    assert rich["rule"]["chain"] == "filter_IN_public_deny"
    assert ev.evaluate(tcp("10.200.2.11", 8443, src="10.200.1.51", iif="veth-fw"))["reply"]["code"] == 13
    # source 10.200.9.0/24 is bound to the trusted zone
    trusted = ev.evaluate(tcp("10.200.2.11", 3306, src="10.200.9.5", iif="veth-fw"))
    assert trusted["verdict"] == "accept"
    assert any(o["text"] == "ip saddr 10.200.9.0/24 goto filter_IN_trusted" for o in trusted["trace"])
    internal = ev.evaluate(tcp("10.200.2.11", 3306, iif="veth-fwp"))
    assert internal["verdict"] == "reject" and internal["rule"]["chain"] == "filter_IN_internal"


def test_firewalld_ipv6_rpfilter_is_indeterminate_not_guessed():
    result = evaluate(nft("scratch-firewalld-nft"),
                      {"family": "ipv6", "proto": "tcp", "src": "fd00::5", "dst": "fd00::1", "dport": 8000,
                       "iif": "veth-fw"})
    assert result["verdict"] == "indeterminate"
    assert "fib" in result["reason"] and "fib" in result["rule"]["text"]


def test_iptables_nft_tables_seen_through_nft_are_flagged_and_indeterminate():
    rs = nft("lab-fwd-ipt")
    assert any("managed by iptables-nft" in w for w in rs["warnings"])
    result = evaluate(rs, tcp("10.200.2.12", 80))
    assert result["verdict"] == "indeterminate"
    assert "xt match conntrack" in result["reason"] and "iptables-save" in result["reason"]


def test_router_forward_and_dnat():
    ev = Evaluator(nft("lab-router"))
    assert ev.evaluate(tcp(HOST, 8081), path="forward")["verdict"] == "drop"
    rej = ev.evaluate(tcp(HOST, 8082), path="forward")
    assert rej["reply"]["code"] == 13 and rej["rule"]["handle"] == 3
    mapped = ev.evaluate(tcp("10.200.1.1", 8088), local_addresses=["10.200.1.1", "10.200.2.1"])
    assert mapped["nat"]["dst"] == HOST and mapped["nat"]["dport"] == 81
    assert "wrong inside port" in mapped["nat"]["rule"]["text"]
    assert mapped["hooks"][-1] == "postrouting"


def test_nft_drop_seed():
    result = evaluate(nft("lab-nft-drop"), tcp("10.200.2.18", 80))
    assert result["verdict"] == "drop" and result["reply"] is None and result["rule"]["handle"] == 2


# ----------------------------------------------------------------- round trip through saved facts

@pytest.mark.parametrize("fixture", ["hand", "lab-fwd-nft", "scratch-firewalld-nft", "lab-router"])
def test_model_round_trips_through_json(fixture):
    rs = nft(fixture)
    saved = json.loads(json.dumps(rs))
    again = model.from_dict(saved)
    assert again == rs
    packets = [tcp(HOST, p, iif=i) for p in (22, 80, 443, 8000, 8082, 9000) for i in ("veth-fw", "veth-a")]
    for pkt in packets:
        assert evaluate(again, pkt) == evaluate(rs, pkt)


# ----------------------------------------------------------------- malformed input

@pytest.mark.parametrize("data", [
    "", "{", "not json", "[]", '{"nftables": {}}', '{"nftables": [1]}', '{"nftables": [{"a": 1, "b": 2}]}',
    '{"nftables": [{"chain": {"family": "inet", "table": "nope", "name": "x"}}]}',
    '{"nftables": [{"table": {"family": "inet", "name": "t"}}, {"rule": {"family": "inet", "table": "t", '
    '"chain": "missing", "expr": []}}]}',
])
def test_garbage_is_a_parse_error(data):
    with pytest.raises(ParseError):
        nftables.parse_nft_json(data)


def test_truncated_capture_is_a_parse_error():
    text = read("nft", "hand.json")
    with pytest.raises(ParseError, match="not JSON"):
        nftables.parse_nft_json(text[: len(text) // 2])


def test_unknown_expression_makes_only_packets_reaching_it_indeterminate():
    data = json.loads(read("nft", "hand.json"))
    corrupted = copy.deepcopy(data)
    for obj in corrupted["nftables"]:
        rule = obj.get("rule")
        if rule and rule["chain"] == "input" and rule["expr"][0].get("match", {}).get("right") == 9002:
            rule["expr"][0] = {"match": {"op": "==", "left": {"osf": {"key": "name"}}, "right": "Linux"}}
    rs = nftables.parse_nft_json(corrupted)
    # port 22 is decided before the unknown rule
    assert evaluate(rs, tcp(HOST, 22))["verdict"] == "accept"
    result = evaluate(rs, tcp(HOST, 9999))
    assert result["verdict"] == "indeterminate" and "osf" in result["reason"]
    assert result["rule"]["handle"] is not None


def test_unknown_statement_and_bad_priority():
    base = {"nftables": [{"table": {"family": "ip", "name": "t", "handle": 1}},
                         {"chain": {"family": "ip", "table": "t", "name": "c", "handle": 1, "type": "filter",
                                    "hook": "input", "prio": 0, "policy": "accept"}},
                         {"rule": {"family": "ip", "table": "t", "chain": "c", "handle": 2,
                                   "expr": [{"tproxy": {"port": 1}}]}}]}
    result = evaluate(nftables.parse_nft_json(base), tcp(HOST, 1))
    assert result["verdict"] == "indeterminate" and "tproxy" in result["reason"]
    base["nftables"][1]["chain"]["prio"] = "sideways"
    with pytest.raises(ParseError, match="sideways"):
        nftables.parse_nft_json(base)


def test_reader_uses_the_binding_or_says_what_is_missing(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_nftables(name, *args, **kw):
        if name == "nftables":
            raise ImportError("no module")
        return real_import(name, *args, **kw)
    monkeypatch.setattr(builtins, "__import__", no_nftables)
    from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import MissingDependency
    with pytest.raises(MissingDependency, match="python3-nftables"):
        nftables.read_nftables(use_binding=True)
    with pytest.raises(MissingDependency, match="nft"):
        nftables.read_nftables(use_binding=False, nft_path="/nonexistent/nft")


# ----------------------------------------------------------------- structurally wrong JSON

def _listing():
    """A small well-formed listing: table inet t, base chain input, a set, a verdict map, 2 rules."""
    return {"nftables": [
        {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
        {"table": {"family": "inet", "name": "t", "handle": 1}},
        {"chain": {"family": "inet", "table": "t", "name": "input", "handle": 1, "type": "filter",
                   "hook": "input", "prio": 0, "policy": "drop"}},
        {"set": {"family": "inet", "table": "t", "name": "ok_src", "type": "ipv4_addr", "handle": 2,
                 "flags": ["interval"], "elem": [{"prefix": {"addr": "10.200.1.0", "len": 24}}]}},
        {"map": {"family": "inet", "table": "t", "name": "ports", "type": "inet_service", "handle": 3,
                 "map": "verdict", "elem": [[8081, {"drop": None}]]}},
        {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 4, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@ok_src"}},
            {"accept": None}]}},
        {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 5, "expr": [
            {"vmap": {"key": {"payload": {"protocol": "tcp", "field": "dport"}}, "data": "@ports"}}]}},
    ]}


def _body(data, kind, n=1):
    """The n-th ``kind`` object of the listing."""
    return [o[kind] for o in data["nftables"] if kind in o][n - 1]


def _set(kind, field, value, n=1):
    def change(data):
        _body(data, kind, n)[field] = value
    return change


def _statement(n_rule, pos, stmt):
    def change(data):
        _body(data, "rule", n_rule)["expr"].insert(pos, stmt)
    return change


@pytest.mark.parametrize("change,message", [
    (_set("table", "family", ["inet"]),
     r'^nftables JSON: table "t" \(item 1\): "family" is a list \(\["inet"\]\), expected a string'),
    (_set("table", "name", None), r'table \(item 1\): "name" is null, expected a string'),
    (_set("chain", "table", {"name": "t"}),
     r'chain "input" \(item 2\): "table" is an object \(\{"name": "t"\}\), expected a string'),
    (_set("chain", "hook", 1), r'chain "input" of table inet t \(item 2\): "hook" is an int \(1\), expected a string'),
    (_set("chain", "prio", [0]), r'"prio" is a list \(\[0\]\), expected an int or a priority name'),
    (_set("rule", "chain", {"name": "input"}),
     r'rule of table inet t \(item 5, handle 4\): "chain" is an object \(\{"name": "input"\}\), expected a string'),
    (_set("rule", "expr", 3, n=2),
     r'^nftables JSON: rule 2 of chain "input" of table inet t \(item 6, handle 5\): "expr" is an int \(3\), '
     r'expected a list in nft -j list ruleset$'),
    (_set("rule", "handle", [4]),
     r'rule 1 of chain "input" of table inet t \(item 5\): "handle" is a list \(\[4\]\), expected an int'),
    (_set("rule", "handle", True), r'"handle" is a boolean \(true\), expected an int'),
    (_set("rule", "comment", {"x": 1}), r'"comment" is an object'),
    (_set("set", "name", ["ok_src"]),
     r'set of table inet t \(item 3\): "name" is a list \(\["ok_src"\]\), expected a string'),
    (_set("set", "elem", "10.0.0.1"), r'set "ok_src" .*"elem" is a string \("10.0.0.1"\), expected a list'),
    (_set("set", "type", {"typeof": 1}), r'set "ok_src" .*"type" is an object'),
    (_set("map", "name", 7), r'map of table inet t \(item 4\): "name" is an int \(7\), expected a string'),
    (_set("map", "elem", [8081, {"drop": None}]),
     r'map "ports" .*: element 1 of "elem" is an int \(8081\), expected a \[key, value\] pair'),
    (_set("metainfo", "json_schema_version", "1"), r'metainfo \(item 0\): "json_schema_version" is a string'),
    (_statement(1, 1, 42), r'rule 1 of chain "input" .*: statement 2 of "expr": an int \(42\), expected an object'),
    (_statement(1, 0, {"accept": None, "drop": None}), r'statement 1 of "expr": an object .*expected an object with one key'),
    (_statement(2, 0, {"jump": "other"}),
     r'rule 2 of chain "input" .*statement 1 of "expr": "jump" is a string \("other"\), expected an object with a '
     r'"target" string'),
    (_statement(1, 2, {"goto": {"target": ["x"]}}), r'statement 3 of "expr": "goto" is an object'),  # after the verdict
    (_statement(1, 0, {"match": [1]}), r'statement 1 of "expr": "match" is a list'),
    (_statement(1, 0, {"reject": {"type": ["icmp"]}}), r'"reject" "type" is a list'),
    (_statement(1, 0, {"dnat": "10.0.0.1"}), r'"dnat" is a string \("10.0.0.1"\), expected an object or null'),
    (_statement(1, 0, {"vmap": [1]}), r'"vmap" is a list'),
])
def test_structurally_wrong_json_is_a_parse_error_naming_the_value_and_where(change, message):
    data = _listing()
    nftables.parse_nft_json(copy.deepcopy(data))  # the listing itself is fine
    change(data)
    with pytest.raises(ParseError, match=message):
        nftables.parse_nft_json(data)
    with pytest.raises(ParseError, match=message):
        nftables.parse_nft_json(json.dumps(data))


def test_wrong_top_level_objects_and_references_are_parse_errors():
    data = _listing()
    data["nftables"][2] = {"chain": ["input"]}
    with pytest.raises(ParseError, match=r'chain \(item 2\) is a list \(\["input"\]\), expected an object'):
        nftables.parse_nft_json(data)
    data = _listing()
    data["nftables"].append({"element": {"family": "inet", "table": "t", "name": "nope", "elem": [1]}})
    with pytest.raises(ParseError, match=r'element "nope" of table inet t \(item 7\) refers to unknown set nope'):
        nftables.parse_nft_json(data)
    data = _listing()
    data["nftables"].append({"element": {"family": "inet", "table": "t", "name": "ok_src", "elem": "10.9.9.9"}})
    with pytest.raises(ParseError, match=r'"elem" is a string \("10.9.9.9"\), expected a list'):
        nftables.parse_nft_json(data)
    data = _listing()
    _body(data, "rule")["chain"] = "missing"
    with pytest.raises(ParseError, match=r'rule 1 of chain "missing" .* refers to unknown chain "missing"'):
        nftables.parse_nft_json(data)


def test_element_objects_add_to_their_set():
    data = _listing()
    assert evaluate(nftables.parse_nft_json(data), tcp(HOST, 22, src="10.9.9.9"))["verdict"] == "drop"
    data["nftables"].append({"element": {"family": "inet", "table": "t", "name": "ok_src", "elem": ["10.9.9.9"]}})
    assert evaluate(nftables.parse_nft_json(data), tcp(HOST, 22, src="10.9.9.9"))["verdict"] == "accept"


def test_well_formed_expressions_the_model_does_not_know_stay_indeterminate():
    # not structural errors: an unknown statement, an unknown match and an unknown set value
    data = _listing()
    _body(data, "rule")["expr"].insert(0, {"osf": {"key": "name", "ttl": "loose"}})
    result = evaluate(nftables.parse_nft_json(data), tcp(HOST, 22))
    assert result["verdict"] == "indeterminate" and "osf" in result["reason"]
    data = _listing()
    _body(data, "rule")["expr"][0]["match"]["left"] = {"socket": {"key": "transparent"}}
    result = evaluate(nftables.parse_nft_json(data), tcp(HOST, 22))
    assert result["verdict"] == "indeterminate" and "socket" in result["reason"]
    data = _listing()
    _body(data, "set")["elem"] = [{"weird": {"x": 1}}]
    result = evaluate(nftables.parse_nft_json(data), tcp(HOST, 22))
    assert result["verdict"] == "indeterminate" and "ok_src" in result["reason"]
