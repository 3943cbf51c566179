# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The common rule model: plain dicts that serialise to JSON (Ansible facts).

A *ruleset* is::

    {"model": 1,
     "tables": [TABLE, ...],
     "warnings": [str, ...]}

    TABLE = {"backend": "nftables" | "iptables-nft" | "iptables-legacy" | ...,
             "family": "ip" | "ip6" | "inet" | "arp" | "bridge" | "netdev",
             "name": str,
             "sets": {NAME: {"name", "keys": [type, ...], "flags": [...],
                             "map": None | "verdict" | type,
                             "elements": [VALUE, ...] or [[VALUE, VERDICT], ...]}},
             "chains": [CHAIN, ...]}

    CHAIN = {"name", "type": None | "filter" | "nat" | "route",
             "hook": None | "prerouting" | "input" | "forward" | "output" | "postrouting",
             "priority": None | int, "policy": None | "accept" | "drop",
             "rules": [RULE, ...]}

    RULE = {"matches": [MATCH, ...], "statements": [STATEMENT, ...],
            "verdict": None | VERDICT, "origin": ORIGIN}

    MATCH = {"key": KEY or [KEY, ...] (a concatenation), "negate": bool,
             "values": [VALUE, ...]  or  "set": NAME,
             "requires": {"family": "ipv4"|"ipv6", "proto": [proto, ...]}}   (optional)
          | {"key": "unknown", "reason": str}

    VERDICT = {"kind": "accept" | "drop" | "continue" | "return"}
            | {"kind": "jump" | "goto", "target": chain}
            | {"kind": "reject", "backend": "nftables"|"iptables", "type": ..., "expr": ...}
            | {"kind": "dnat" | "snat" | "masquerade" | "redirect", "addr": ..., "port": ...}
            | {"kind": "vmap", "key": KEY or [KEY, ...], "map": [[VALUE, VERDICT], ...] or "set": NAME}
            | {"kind": "unknown", "reason": str}

    ORIGIN = {"backend", "family", "table", "chain", "handle" or "line", "text"}

KEYs are the packet's own keys (see ``PACKET_KEYS``).  VALUEs are JSON scalars: addresses
``"10.0.0.0/24"``, ``"10.0.0.1-10.0.0.9"``; numbers ``80`` or ranges ``[8000, 8010]``;
interface names (``"veth*"`` is a prefix wildcard); names of conntrack states, protocols and
ICMP types.  Concatenated keys take lists of such values.
"""

from __future__ import annotations

import contextlib
import copy
import gc

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import is_digits

MODEL_VERSION = 1

# Bounds on what one ruleset may hold (docs/rule-model.md, "Limits"); readers and saved facts over them
# are a ParseError naming the count, the limit and the source, instead of minutes of work and gigabytes.
MAX_RULES = 200000            # rules of all chains of a ruleset; kube-proxy writes about 5 per service
MAX_SET_ELEMENTS = 1000000    # elements of one set or verdict map, named or written in a rule

HOOKS = ("prerouting", "input", "forward", "output", "postrouting")

# Packet keys a match may test.
PACKET_KEYS = (
    "family", "proto", "src", "dst", "sport", "dport", "iif", "oif",
    "ct_state", "ct_status", "ctstate", "icmp_type", "icmp_code", "mark", "dst_type", "src_type", "tcp_flags", "rt_type",
    # conntrack's tuples (the original one is the packet before DNAT) and direction, derived by the evaluator
    "ct_orig_src", "ct_orig_dst", "ct_orig_sport", "ct_orig_dport", "ct_repl_src", "ct_repl_dst", "ct_repl_sport",
    "ct_repl_dport", "ct_direction",
)

VERDICT_KINDS = (
    "accept", "drop", "continue", "return", "jump", "goto", "reject",
    "dnat", "snat", "masquerade", "redirect", "vmap", "unknown",
)

# nftables named priorities (nft(8) "PRIORITY"), for the ip/ip6/inet families.
NFT_PRIORITIES = {
    "raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100,
}

# iptables tables -> (hook -> priority); chains with these names in these tables are base chains.
IPT_BASE_CHAINS = {
    "raw": {"PREROUTING": -300, "OUTPUT": -300},
    "mangle": {"PREROUTING": -150, "INPUT": -150, "FORWARD": -150, "OUTPUT": -150, "POSTROUTING": -150},
    "nat": {"PREROUTING": -100, "INPUT": 100, "OUTPUT": -100, "POSTROUTING": 100},
    "filter": {"INPUT": 0, "FORWARD": 0, "OUTPUT": 0},
    "security": {"INPUT": 50, "FORWARD": 50, "OUTPUT": 50},
}
IPT_CHAIN_TYPE = {"raw": "filter", "mangle": "route", "nat": "nat", "filter": "filter", "security": "filter"}

L4PROTO_NUMBERS = {
    1: "icmp", 2: "igmp", 4: "ipip", 6: "tcp", 17: "udp", 33: "dccp", 41: "ipv6", 47: "gre",
    50: "esp", 51: "ah", 58: "ipv6-icmp", 132: "sctp", 136: "udplite",
}
L4PROTO_ALIASES = {"icmpv6": "ipv6-icmp", "ipv6icmp": "ipv6-icmp", "icmp6": "ipv6-icmp"}
PORT_PROTOS = ("tcp", "udp", "sctp", "dccp", "udplite")

ICMP4_TYPE_NUMBERS = {
    "echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
    "echo-request": 8, "router-advertisement": 9, "router-solicitation": 10, "time-exceeded": 11,
    "parameter-problem": 12, "timestamp-request": 13, "timestamp-reply": 14, "info-request": 15,
    "info-reply": 16, "address-mask-request": 17, "address-mask-reply": 18,
    # iptables spellings
    "ping": 8, "pong": 0, "any": None,
}
ICMP6_TYPE_NUMBERS = {
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
    "echo-request": 128, "echo-reply": 129, "mld-listener-query": 130, "mld-listener-report": 131,
    "mld-listener-done": 132, "mld-listener-reduction": 132, "nd-router-solicit": 133,
    "nd-router-advert": 134, "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136, "nd-redirect": 137,
    "router-renumbering": 138, "ind-neighbor-solicit": 141, "ind-neighbor-advert": 142,
    "mld2-listener-report": 143,
    # iptables spellings
    "router-solicitation": 133, "router-advertisement": 134, "neighbour-solicitation": 135,
    "neighbor-solicitation": 135, "neighbour-advertisement": 136, "neighbor-advertisement": 136,
    "ping": 128, "pong": 129,
}

CT_STATES = ("new", "established", "related", "invalid", "untracked")

# keys whose VALUEs are numbers or [lo, hi] ranges, and the largest value each field can hold
NUMBER_KEYS = {
    "sport": 65535, "dport": 65535, "ct_orig_sport": 65535, "ct_orig_dport": 65535, "ct_repl_sport": 65535,
    "ct_repl_dport": 65535, "icmp_type": 255, "icmp_code": 255, "rt_type": 255, "mark": 2 ** 32 - 1,
}


OPEN_END = 2 ** 32  # the upper bound earlier versions wrote for nft `>` and `>=` comparisons


def number_range(key, value):
    """``(lo, hi)`` of one VALUE of a numeric key (an int, a string of ASCII digits or ``[lo, hi]``).

    Raises ValueError naming the value when it is not a number, is out of the field's range
    (ports 0-65535, ICMP type and code 0-255, marks 32 bits) or is a reversed range.
    """
    high = NUMBER_KEYS.get(key, 2 ** 32 - 1)

    def one(v):
        if isinstance(v, bool) or not (isinstance(v, int) or is_digits(v)):
            raise ValueError("%s value %r is not a number" % (key, v))
        n = int(v)
        if not 0 <= n <= high:
            raise ValueError("%s value %r is out of range 0-%d" % (key, v, high))
        return n
    if isinstance(value, list):
        if len(value) != 2:
            raise ValueError("%s range %r is not [low, high]" % (key, value))
        if value[1] == OPEN_END and not isinstance(value[1], bool):
            value = [value[0], high]  # `dport > 1024` as saved by earlier versions: up to the field's maximum
        lo, hi = one(value[0]), one(value[1])
        if lo > hi:
            raise ValueError("%s range %r is reversed (%d > %d)" % (key, value, lo, hi))
        return lo, hi
    n = one(value)
    return n, n


def invalid_number(key, value):
    """Why a VALUE of a numeric key is invalid, or None.  Only numbers and ranges are judged
    (names such as ICMP type names are left to the evaluator, which knows them)."""
    if key not in NUMBER_KEYS:
        return None
    if not (isinstance(value, (int, list)) or is_digits(value)):
        return None
    try:
        number_range(key, value)
    except ValueError as exc:
        return str(exc)
    return None


def _match_problem(match, table, seen=None):
    """The first invalid number of a match (its values, or the elements of its set), or None.

    ``seen`` (a dict) keeps the answer for each named set and key, so a large set tested by many
    rules is read once."""
    key = match.get("key")
    keys = key if isinstance(key, list) else [key]
    if not any(k in NUMBER_KEYS for k in keys if isinstance(k, str)):
        return None
    if "values" in match:
        return _values_problem(key, keys, match["values"])
    entry = (table.get("sets") or {}).get(match.get("set")) or {}
    values = entry.get("elements") if not entry.get("map") else None
    if seen is None or not isinstance(match.get("set"), str) or not all(isinstance(k, str) for k in keys):
        return _values_problem(key, keys, values)
    ckey = (id(table), match["set"], tuple(keys), isinstance(key, list))
    if ckey not in seen:
        seen[ckey] = _values_problem(key, keys, values)
    return seen[ckey]


def _values_problem(key, keys, values):
    for value in values if isinstance(values, list) else []:
        parts = value if isinstance(key, list) else [value]
        if not isinstance(parts, list):
            continue
        for k, v in zip(keys, parts):
            why = invalid_number(k, v) if isinstance(k, str) else None
            if why:
                return why
    return None


def quarantine_invalid(ruleset):
    """For a ruleset just read from a host: a match holding an impossible number (``--dport 70000``,
    a reversed range ``80:70``) becomes an ``unknown`` match, so the evaluator answers
    ``indeterminate`` for the packets that rule could decide, and the ruleset gets a warning
    naming the rule.  Returns the ruleset."""
    seen = {}
    for table in ruleset.get("tables") or []:
        for chain in table.get("chains") or []:
            for rule in chain.get("rules") or []:
                origin = rule.get("origin") or {}
                for i, match in enumerate(rule.get("matches") or []):
                    why = _match_problem(match, table, seen)
                    if why is None:
                        continue
                    rule["matches"][i] = unknown_match("invalid match: %s" % why)
                    ref = ("handle %s" % origin["handle"] if origin.get("handle") is not None
                           else "line %s" % origin.get("line"))
                    ruleset.setdefault("warnings", []).append(
                        "%s rule '%s' (%s %s, chain %s, %s): %s; packets it could decide are indeterminate"
                        % (origin.get("backend") or table.get("backend"), origin.get("text"), table.get("family"),
                           table.get("name"), chain.get("name"), ref, why))
    return ruleset


def check_rules(count, source):
    """Raise ParseError when ``count`` rules are more than MAX_RULES."""
    if count > MAX_RULES:
        raise ParseError("%s rules, more than the %s a ruleset may hold (MAX_RULES)"
                         % ("{:,}".format(count), "{:,}".format(MAX_RULES)), source=source)


def check_elements(count, what, source):
    """Raise ParseError when ``what`` (``set inet filter blocked``) holds more than MAX_SET_ELEMENTS."""
    if count > MAX_SET_ELEMENTS:
        raise ParseError("%s holds %s elements, more than the %s a set may hold (MAX_SET_ELEMENTS)"
                         % (what, "{:,}".format(count), "{:,}".format(MAX_SET_ELEMENTS)), source=source)


@contextlib.contextmanager
def building():
    """Pause Python's cyclic garbage collector while a large ruleset is read or compiled.

    Those build hundreds of thousands of dicts, lists and closures without reference cycles; every
    full collection on the way walks all of them again, which made reading and compiling 10,000
    kube-proxy services slower per service the more there were (about twice the time in all).
    The collector is running again afterwards (when it was), and collects what it did not."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def new_ruleset():
    return {"model": MODEL_VERSION, "tables": [], "warnings": []}


def merge(*rulesets):
    """One ruleset holding every table (and warning) of ``rulesets``, in order."""
    out = new_ruleset()
    for rs in rulesets:
        if not rs:
            continue
        rs = from_dict(rs)
        out["tables"].extend(rs["tables"])
        out["warnings"].extend(rs.get("warnings", []))
    return out


def to_dict(ruleset):
    """The ruleset as plain JSON data (a deep copy)."""
    return copy.deepcopy(ruleset)


def _fail(what, value):
    raise ParseError("invalid rule model: %s (got %r)" % (what, value), source="rule model")


def _check_match(m, where):
    if not isinstance(m, dict) or "key" not in m:
        _fail(where + " must be a dict with a key", m)
    key = m["key"]
    if key == "unknown":
        return
    if not (isinstance(key, str) or (isinstance(key, list) and key and all(isinstance(k, str) for k in key))):
        _fail(where + ".key must be a string or a list of strings", key)
    if "values" not in m and "set" not in m:
        _fail(where + " needs values or set", m)
    if "values" in m:
        if not isinstance(m["values"], list):
            _fail(where + ".values must be a list", m["values"])
        check_elements(len(m["values"]), where + ".values", "rule model")
        for vi, value in enumerate(m["values"]):
            if isinstance(key, list):
                if not isinstance(value, list) or len(value) != len(key):
                    _fail("%s.values[%d] must be a list of %d values (one per key)" % (where, vi, len(key)), value)
                parts = value
            else:
                parts = [value]
            for k, v in zip(key if isinstance(key, list) else [key], parts):
                why = invalid_number(k, v)
                if why:
                    _fail("%s.values[%d]: %s" % (where, vi, why), v)
    elif not isinstance(m["set"], str):
        _fail(where + ".set must be a set name", m["set"])
    if not isinstance(m.get("negate", False), bool):
        _fail(where + ".negate must be a boolean", m.get("negate"))
    req = m.get("requires")
    if req is not None:
        if not isinstance(req, dict) or not isinstance(req.get("family", ""), str) or not (
                "proto" not in req or (isinstance(req["proto"], list) and all(isinstance(p, str) for p in req["proto"]))):
            _fail(where + ".requires must be a dict {family: str, proto: [str, ...]}", req)


def _check_verdict(v, where):
    if v is None:
        return
    if not isinstance(v, dict) or v.get("kind") not in VERDICT_KINDS:
        _fail("%s: verdict must be a dict with kind in %s" % (where, ", ".join(VERDICT_KINDS)), v)
    if v["kind"] in ("jump", "goto") and not isinstance(v.get("target"), str):
        _fail("%s: %s needs a target chain name" % (where, v["kind"]), v)
    if v["kind"] == "vmap":
        if "set" not in v and not isinstance(v.get("map"), list):
            _fail("%s: vmap needs map or set" % where, v)
        check_elements(len(v.get("map") or []), where + ".verdict.map", "rule model")
        for item in v.get("map") or []:
            if not isinstance(item, list) or len(item) != 2:
                _fail("%s: vmap entries are [value, verdict]" % where, item)
            _check_verdict(item[1], where)


def from_dict(data):
    """Validate a ruleset read back from JSON (saved facts) and return it.

    Raises ParseError naming the first bad part, or a count over MAX_RULES / MAX_SET_ELEMENTS;
    never returns a half-valid model.
    """
    if not isinstance(data, dict) or "tables" not in data:
        _fail("a ruleset is a dict with a 'tables' list", type(data).__name__)
    if data.get("model", MODEL_VERSION) != MODEL_VERSION:
        _fail("unsupported model version", data.get("model"))
    if not isinstance(data["tables"], list):
        _fail("'tables' must be a list", data["tables"])
    rules = 0
    for ti, table in enumerate(data["tables"]):
        where = "tables[%d]" % ti
        if not isinstance(table, dict):
            _fail(where + " must be a dict", table)
        for key in ("backend", "family", "name"):
            if not isinstance(table.get(key), str):
                _fail("%s.%s must be a string" % (where, key), table.get(key))
        if not isinstance(table.get("chains"), list):
            _fail(where + ".chains must be a list", table.get("chains"))
        if not isinstance(table.get("sets", {}), dict):
            _fail(where + ".sets must be a dict", table.get("sets"))
        for sname, entry in (table.get("sets") or {}).items():
            if not isinstance(entry, dict) or not isinstance(entry.get("elements", []), (list, type(None))):
                _fail("%s.sets.%s must be a dict whose elements are a list" % (where, sname), entry)
            check_elements(len(entry.get("elements") or []), "%s.sets.%s" % (where, sname), "rule model")
        for ci, chain in enumerate(table["chains"]):
            cwhere = "%s.chains[%d]" % (where, ci)
            if not isinstance(chain, dict) or not isinstance(chain.get("name"), str):
                _fail(cwhere + " must be a dict with a name", chain)
            if chain.get("hook") is not None and chain["hook"] not in HOOKS + ("ingress", "egress"):
                _fail(cwhere + ".hook", chain["hook"])
            if chain.get("hook") is not None and not isinstance(chain.get("priority"), int):
                _fail(cwhere + ".priority must be an int for a base chain", chain.get("priority"))
            if chain.get("policy") not in (None, "accept", "drop"):
                _fail(cwhere + ".policy", chain.get("policy"))
            if not isinstance(chain.get("rules"), list):
                _fail(cwhere + ".rules must be a list", chain.get("rules"))
            rules += len(chain["rules"])
            if rules > MAX_RULES:
                check_rules(_count_rules(data), "rule model")
            for ri, rule in enumerate(chain["rules"]):
                rwhere = "%s.rules[%d]" % (cwhere, ri)
                if not isinstance(rule, dict) or not isinstance(rule.get("matches"), list):
                    _fail(rwhere + " must be a dict with a matches list", rule)
                if not isinstance(rule.get("origin"), dict):
                    _fail(rwhere + ".origin must be a dict", rule.get("origin"))
                for mi, m in enumerate(rule["matches"]):
                    _check_match(m, "%s.matches[%d]" % (rwhere, mi))
                if not isinstance(rule.get("statements", []), list) or not all(
                        isinstance(st, dict) for st in rule.get("statements") or []):
                    _fail(rwhere + ".statements must be a list of dicts", rule.get("statements"))
                _check_verdict(rule.get("verdict"), rwhere)
    data.setdefault("warnings", [])
    data.setdefault("model", MODEL_VERSION)
    return data


def _count_rules(data):
    """The rules of a ruleset that may not be valid yet (parts of the wrong type count none)."""
    return sum(len(chain["rules"]) for table in data["tables"] if isinstance(table, dict)
               and isinstance(table.get("chains"), list)
               for chain in table["chains"] if isinstance(chain, dict) and isinstance(chain.get("rules"), list))


def iter_rules(ruleset):
    """Yield (table, chain, rule) for every rule."""
    for table in ruleset["tables"]:
        for chain in table["chains"]:
            for rule in chain["rules"]:
                yield table, chain, rule


def unknown_match(reason):
    return {"key": "unknown", "reason": reason}


def combine(nft_ruleset=None, iptables_rulesets=()):
    """One ruleset from an nftables listing and iptables dumps.

    Tables that iptables-nft manages show up in both; the iptables-save view is the one the
    model understands (the nft view holds ``xt`` expressions), so it replaces them.
    """
    ipt = merge(*iptables_rulesets) if iptables_rulesets else new_ruleset()
    seen = {(t["family"], t["name"]) for t in ipt["tables"] if t["backend"] == "iptables-nft"}
    out = new_ruleset()
    if nft_ruleset:
        nft_ruleset = from_dict(nft_ruleset)
        for t in nft_ruleset["tables"]:
            if t.get("managed_by") == "iptables-nft" and (t["family"], t["name"]) in seen:
                continue
            out["tables"].append(t)
        out["warnings"].extend(w for w in nft_ruleset.get("warnings", [])
                               if not any("table %s %s " % k in w for k in seen))
    out["tables"].extend(ipt["tables"])
    out["warnings"].extend(ipt["warnings"])
    return out
