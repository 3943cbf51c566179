# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nftables -> rule model, from libnftables JSON (``nft -j list ruleset``).

``parse_nft_json(data, text=None)`` converts the JSON; ``text`` is the output of
``nft -a list ruleset`` and, when given, supplies each rule's own text (looked up by
handle); otherwise the text is rendered from the JSON.  ``read_nftables()`` reads the
live ruleset through the ``nftables`` Python binding when it imports, else by running
``nft``.

Anything the model cannot express becomes an ``unknown`` match or verdict carrying the
reason, so the evaluator answers ``indeterminate`` instead of guessing.  JSON of the wrong
shape (a list where a table's ``family`` string belongs, an int for a rule's ``expr``, ...)
is not an unknown expression: it raises ParseError naming the object, the field and the value.
"""

from __future__ import annotations

import json
import re
import subprocess

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    BackendUnavailable, MissingDependency, ParseError,
)
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.model import (
    L4PROTO_NUMBERS, NFT_PRIORITIES, NUMBER_KEYS, PORT_PROTOS, building, check_elements, check_rules, from_dict,
    new_ruleset, quarantine_invalid, unknown_match,
)

BACKEND = "nftables"

# payload protocol -> (family requirement, l4 protocols implied)
_L3 = {"ip": "ipv4", "ip6": "ipv6"}
_L4 = {"tcp": ["tcp"], "udp": ["udp"], "sctp": ["sctp"], "dccp": ["dccp"], "udplite": ["udplite"],
       "th": list(PORT_PROTOS)}
_META_KEYS = {
    "l4proto": "proto", "nfproto": "family", "protocol": "family", "iifname": "iif", "oifname": "oif",
    "iif": "iif", "oif": "oif", "mark": "mark",
}
_FAMILY_VALUES = {"ipv4": "ipv4", "ip": "ipv4", "ipv6": "ipv6", "ip6": "ipv6", 2: "ipv4", 10: "ipv6",
                  2048: "ipv4", 34525: "ipv6"}
_NON_TERMINAL = ("counter", "log", "comment", "notrack", "mangle", "ct helper", "ct timeout",
                 "ct expectation", "set", "map", "flow", "dup", "fwd", "secmark", "objref", "last")
_CMP = {"<": "lt", ">": "gt", "<=": "le", ">=": "ge"}


class _Unknown(Exception):
    """An expression the model cannot express (caught inside this module)."""


class _Malformed(ParseError):
    """JSON of the wrong shape (a field of the wrong type, a statement that is not an object, a
    ``jump`` whose argument is not an object, ...).  ``parse_nft_json`` re-raises it as a
    ParseError naming the object and the source."""


_TYPE_NAMES = ((bool, "a boolean"), (int, "an int"), (float, "a float"), (str, "a string"),
               (list, "a list"), (dict, "an object"), (type(None), "null"))


def _describe(value):
    """'an int (5)', 'a list ([1])', ... for error messages (the value shortened)."""
    name = next((n for t, n in _TYPE_NAMES if isinstance(value, t)), type(value).__name__)
    if value is None:
        return name
    shown = json.dumps(value, sort_keys=True, default=str)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return "%s (%s)" % (name, shown)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_list(value):
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# what each field of a top-level object may hold: (test, expected); absent/null optional fields pass
_STR = (lambda v: isinstance(v, str), "a string")
_INT = (_is_int, "an int")
_STR_OR_STRS = (lambda v: isinstance(v, str) or _is_str_list(v), "a string or a list of strings")
_LIST = (lambda v: isinstance(v, list), "a list")
_PRIO = (lambda v: _is_int(v) or isinstance(v, str), "an int or a priority name")
_FIELDS = {
    # kind: (required fields, optional fields)
    "metainfo": ({}, {"version": _STR, "release_name": _STR, "json_schema_version": _INT}),
    "table": ({"family": _STR, "name": _STR}, {"handle": _INT}),
    "chain": ({"family": _STR, "table": _STR, "name": _STR},
              {"handle": _INT, "type": _STR, "hook": _STR, "policy": _STR, "prio": _PRIO}),
    "rule": ({"family": _STR, "table": _STR, "chain": _STR, "expr": _LIST},
             {"handle": _INT, "comment": _STR}),
    "set": ({"family": _STR, "table": _STR, "name": _STR},
            {"handle": _INT, "type": _STR_OR_STRS, "flags": _STR_OR_STRS, "elem": _LIST}),
    "map": ({"family": _STR, "table": _STR, "name": _STR},
            {"handle": _INT, "type": _STR_OR_STRS, "map": _STR_OR_STRS, "flags": _STR_OR_STRS, "elem": _LIST}),
    "element": ({"family": _STR, "table": _STR, "name": _STR, "elem": _LIST}, {}),
}


def _check_fields(kind, body, where):
    """Raise _Malformed naming the first field of ``body`` (a ``kind`` object) of the wrong type."""
    required, optional = _FIELDS[kind]
    for key, (test, expected) in required.items():
        if key not in body:
            raise _Malformed('%s: no "%s" (expected %s)' % (where, key, expected))
        if not test(body[key]):
            raise _Malformed('%s: "%s" is %s, expected %s' % (where, key, _describe(body[key]), expected))
    for key, (test, expected) in optional.items():
        if body.get(key) is not None and not test(body[key]):
            raise _Malformed('%s: "%s" is %s, expected %s' % (where, key, _describe(body[key]), expected))


def _where(kind, index, body, number=None):
    """How an error names a top-level object: 'rule 3 of chain "input" of table inet filter
    (item 7, handle 12)'; ``number`` is a rule's position in its chain."""
    def text(key):
        value = body.get(key)
        return value if isinstance(value, str) else None
    name, family, table = text("name"), text("family"), text("table")
    out = kind
    if kind == "rule" and text("chain") is not None:
        out = 'rule %d of chain "%s"' % (number, body["chain"])
    elif kind == "table" and name is not None:
        out += " %s %s" % (family, name) if family else ' "%s"' % name
    elif name is not None:
        out += ' "%s"' % name
    if kind != "table" and table is not None:
        out += " of table %s %s" % (family or "?", table)
    extra = ", handle %d" % body["handle"] if kind == "rule" and _is_int(body.get("handle")) else ""
    return "%s (item %d%s)" % (out, index, extra)


def _left_key(left):
    """Map a JSON left-hand expression to (key, requires) or raise _Unknown."""
    if isinstance(left, dict) and "payload" in left:
        p = left["payload"]
        proto, field = p.get("protocol"), p.get("field")
        if proto in _L3 and field in ("saddr", "daddr"):
            return ("src" if field == "saddr" else "dst"), {"family": _L3[proto]}
        if proto == "ip" and field == "protocol":
            return "proto", {"family": "ipv4"}
        if proto == "ip6" and field == "nexthdr":
            return "proto", {"family": "ipv6"}
        if proto in _L4 and field in ("sport", "dport"):
            return field, {"proto": list(_L4[proto])}
        if proto == "icmp" and field in ("type", "code"):
            return "icmp_" + field, {"family": "ipv4", "proto": ["icmp"]}
        if proto == "icmpv6" and field in ("type", "code"):
            return "icmp_" + field, {"family": "ipv6", "proto": ["ipv6-icmp"]}
        if proto == "tcp" and field == "flags":
            return "tcp_flags", {"proto": ["tcp"]}
        raise _Unknown("payload %s %s" % (proto, field))
    if isinstance(left, dict) and "meta" in left:
        key = left["meta"].get("key")
        if key in _META_KEYS:
            return _META_KEYS[key], {}
        raise _Unknown("meta %s" % key)
    if isinstance(left, dict) and "ct" in left:
        key = left["ct"].get("key")
        if key in ("state", "status") and "dir" not in left["ct"]:
            return "ct_" + key, {}
        if key == "direction" and "dir" not in left["ct"]:
            return "ct_direction", {}
        direction = left["ct"].get("dir")
        tuple_keys = {"saddr": "src", "daddr": "dst", "proto-src": "sport", "proto-dst": "dport",
                      "ip saddr": "src", "ip daddr": "dst", "ip6 saddr": "src", "ip6 daddr": "dst"}
        if direction in ("original", "reply") and key in tuple_keys:
            fam = left["ct"].get("family") or (key.split()[0] if " " in key else None)
            req = {"family": "ipv4"} if fam == "ip" else {"family": "ipv6"} if fam == "ip6" else {}
            return "ct_%s_%s" % ("orig" if direction == "original" else "repl", tuple_keys[key]), req
        raise _Unknown("ct %s%s" % ("%s " % direction if direction else "", key))
    if isinstance(left, dict) and "fib" in left:
        raise _Unknown("fib %s (reverse-path/route lookup)" % json.dumps(left["fib"], sort_keys=True))
    raise _Unknown(_render(left))


def _scalar(value, key):
    """One right-hand element -> model VALUE (str, int, [lo, hi]) or raise _Unknown."""
    if isinstance(value, bool):
        raise _Unknown("boolean %r" % value)
    if isinstance(value, (int, str)):
        if key == "proto" and isinstance(value, int):
            return L4PROTO_NUMBERS.get(value, value)
        if key == "family":
            if value not in _FAMILY_VALUES:
                raise _Unknown("family %r" % value)
            return _FAMILY_VALUES[value]
        return value
    if isinstance(value, dict):
        if "prefix" in value:
            return "%s/%s" % (value["prefix"]["addr"], value["prefix"]["len"])
        if "range" in value:
            lo, hi = value["range"]
            if key in ("src", "dst"):
                return "%s-%s" % (lo, hi)
            return [_scalar(lo, key), _scalar(hi, key)]
        if "elem" in value:  # element with timeout/comment
            return _scalar(value["elem"].get("val"), key)
    raise _Unknown("value %s" % json.dumps(value, sort_keys=True))


def _values(right, key):
    """Right-hand side -> ("values", [...]) or ("set", name)."""
    if isinstance(right, str) and right.startswith("@"):
        return "set", right[1:]
    if isinstance(right, dict) and "set" in right:
        items = right["set"]
        if not isinstance(items, list):
            items = [items]
        _check_anonymous(items)
        return "values", [_element(v, key) for v in items]
    if isinstance(right, list):  # flag lists: ct state { established, related }
        return "values", [_scalar(v, key) for v in right]
    return "values", [_element(right, key)]


def _check_anonymous(items):
    """Raise _Malformed when a set or map written in a rule holds more than MAX_SET_ELEMENTS."""
    try:
        check_elements(len(items), "an anonymous set", None)
    except ParseError as exc:
        raise _Malformed(str(exc))


def _element(value, key):
    if isinstance(key, list):
        if isinstance(value, dict) and "concat" in value:
            parts = value["concat"]
            if len(parts) != len(key):
                raise _Unknown("concatenation of %d values for %d keys" % (len(parts), len(key)))
            return [_scalar(v, k) for v, k in zip(parts, key)]
        raise _Unknown("non-concatenated value for a concatenation")
    return _scalar(value, key)


def _merge_requires(reqs):
    out = {}
    for r in reqs:
        if "family" in r:
            if out.get("family", r["family"]) != r["family"]:
                out["family"] = "none"
            else:
                out["family"] = r["family"]
        if "proto" in r:
            if "proto" in out:
                out["proto"] = [p for p in out["proto"] if p in r["proto"]]
            else:
                out["proto"] = list(r["proto"])
    return out


def _key_of(left):
    if isinstance(left, dict) and "concat" in left:
        keys, reqs = [], []
        for part in left["concat"]:
            k, r = _left_key(part)
            keys.append(k)
            reqs.append(r)
        return keys, _merge_requires(reqs)
    return _left_key(left)


def _match(m):
    left, right, op = m.get("left"), m.get("right"), m.get("op", "==")
    try:
        key, requires = _key_of(left)
        if op in _CMP:
            if isinstance(key, list) or not isinstance(right, int) or isinstance(right, bool):
                raise _Unknown("comparison %s %s" % (op, _render(right)))
            top = NUMBER_KEYS.get(key, 2 ** 32 - 1)  # `tcp dport > 1024` is 1025-65535
            bounds = {"lt": [0, right - 1], "le": [0, right], "gt": [right + 1, top], "ge": [right, top]}
            out = {"key": key, "negate": False, "values": [bounds[_CMP[op]]]}
        elif op in ("==", "!=", "in"):
            kind, vals = _values(right, key)
            out = {"key": key, "negate": op == "!="}
            out[kind] = vals
        else:
            raise _Unknown("operator %s" % op)
    except _Unknown as exc:
        return unknown_match("cannot model %s" % exc)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        return unknown_match("cannot model match %s (%s)" % (_render({"match": m}), exc))
    if requires:
        out["requires"] = requires
    return out


def _reject(stmt):
    if stmt is not None and not isinstance(stmt, dict):
        raise _Malformed('"reject" is %s, expected an object or null' % _describe(stmt))
    stmt = stmt or {}
    if stmt.get("type") is not None and not isinstance(stmt["type"], str):
        raise _Malformed('"reject" "type" is %s, expected a string' % _describe(stmt["type"]))
    if stmt.get("expr") is not None and not (isinstance(stmt["expr"], str) or _is_int(stmt["expr"])):
        raise _Malformed('"reject" "expr" is %s, expected a string' % _describe(stmt["expr"]))
    return {"kind": "reject", "backend": "nftables", "type": stmt.get("type"), "expr": stmt.get("expr")}


def _verdict_of(stmt):
    """A verdict statement ({"accept": null}, {"jump": {...}}) -> VERDICT, else None."""
    if not isinstance(stmt, dict) or len(stmt) != 1:
        return None
    (name, arg), = stmt.items()
    if name in ("accept", "drop", "continue", "return"):
        return {"kind": name}
    if name in ("jump", "goto"):
        if not isinstance(arg, dict) or not isinstance(arg.get("target"), str):
            raise _Malformed('"%s" is %s, expected an object with a "target" string' % (name, _describe(arg)))
        return {"kind": name, "target": arg["target"]}
    return None


def _nat(name, arg):
    if arg is not None and not isinstance(arg, dict):
        raise _Malformed('"%s" is %s, expected an object or null' % (name, _describe(arg)))
    arg = arg or {}
    out = {"kind": name}
    for k in ("addr", "port", "family"):
        if k in arg:
            val = arg[k]
            if isinstance(val, (str, int)) and not isinstance(val, bool):
                out[k] = val
            else:
                return {"kind": "unknown", "reason": "cannot model %s to %s" % (name, _render(val))}
    return out


def _vmap(arg):
    try:
        key, requires = _key_of(arg.get("key"))
        data = arg.get("data")
        if isinstance(data, str) and data.startswith("@"):
            out = {"kind": "vmap", "key": key, "set": data[1:]}
        else:
            items = data.get("set") if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise _Unknown("vmap data %s" % _render(data))
            _check_anonymous(items)
            entries = []
            for item in items:
                if not isinstance(item, list) or len(item) != 2:
                    raise _Unknown("vmap entry %s" % _render(item))
                verdict = _verdict_of(item[1])
                if verdict is None:
                    raise _Unknown("vmap verdict %s" % _render(item[1]))
                entries.append([_element(item[0], key), verdict])
            out = {"kind": "vmap", "key": key, "map": entries}
    except _Unknown as exc:
        return {"kind": "unknown", "reason": "cannot model vmap: %s" % exc}, None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        return {"kind": "unknown", "reason": "cannot model vmap %s (%s)" % (_render(arg), exc)}, None
    return out, requires


def convert_rule(exprs):
    """Convert a rule's ``expr`` list into (matches, statements, verdict).

    Raises ParseError when the JSON has the wrong shape (``expr`` not a list, a statement that
    is not a one-key object, a ``jump`` without a target name, ...), wherever in the rule it
    is; a well-formed statement or expression the model does not know becomes an ``unknown``
    match or verdict instead.
    """
    matches, statements, verdict = [], [], None
    if not isinstance(exprs, list):
        raise _Malformed('"expr" is %s, expected a list' % _describe(exprs))
    for i, stmt in enumerate(exprs):
        try:
            what, value = _statement(stmt)
        except _Malformed as exc:
            raise _Malformed('statement %d of "expr": %s' % (i + 1, exc))
        if verdict is not None:
            continue  # nothing after a terminal statement runs (but its shape is checked)
        if what == "match":
            matches.append(value)
        elif what == "statement":
            statements.append(value)
        else:
            verdict = value
    return matches, statements, verdict


def _statement(stmt):
    """One statement -> ("match", MATCH) | ("statement", STATEMENT) | ("verdict", VERDICT)."""
    if not isinstance(stmt, dict) or len(stmt) != 1:
        raise _Malformed("%s, expected an object with one key" % _describe(stmt))
    (name, arg), = stmt.items()
    if name == "match":
        if not isinstance(arg, dict):
            raise _Malformed('"match" is %s, expected an object' % _describe(arg))
        return "match", _match(arg)
    verdict = _verdict_of(stmt)
    if verdict is not None:
        return "verdict", verdict
    if name == "reject":
        return "verdict", _reject(arg)
    if name in ("dnat", "snat", "masquerade", "redirect"):
        return "verdict", _nat(name, arg)
    if name == "vmap":
        if not isinstance(arg, dict):
            raise _Malformed('"vmap" is %s, expected an object' % _describe(arg))
        verdict, requires = _vmap(arg)
        if requires:  # `tcp dport vmap {...}` only applies to tcp packets
            verdict["requires"] = requires
        return "verdict", verdict
    if name in _NON_TERMINAL:
        return "statement", {"kind": name}
    if name in ("limit", "quota"):
        # a rate limit or quota matches some packets and not others
        return "match", unknown_match("%s %s depends on traffic rate/volume" % (name, _render(arg)))
    if name == "xt":
        what = arg.get("type", "?") if isinstance(arg, dict) else "?"
        xname = arg.get("name", "?") if isinstance(arg, dict) else "?"
        reason = ("iptables-nft extension xt %s %s (read this table with iptables-save instead)"
                  % (what, xname))
        if what == "target":
            return "verdict", {"kind": "unknown", "reason": reason}
        return "match", unknown_match(reason)
    if name in ("queue", "tproxy", "synproxy"):
        return "verdict", {"kind": "unknown", "reason": "cannot model %s" % name}
    return "verdict", {"kind": "unknown", "reason": "cannot model statement %s" % _render(stmt)}


# ----------------------------------------------------------------- text of rules

def _render(e):
    """Compact nft-like rendering of a JSON expression (used when no `nft -a` text is given)."""
    try:
        return _render_inner(e)
    except Exception:  # rendering is cosmetic; never let it fail a parse
        return json.dumps(e, sort_keys=True, default=str)


def _render_inner(e):
    if e is None:
        return ""
    if isinstance(e, (str, int)):
        return str(e)
    if isinstance(e, list):
        return "{ %s }" % ", ".join(_render_inner(x) for x in e)
    if not isinstance(e, dict) or len(e) != 1:
        return json.dumps(e, sort_keys=True)
    (k, v), = e.items()
    if k == "match":
        op = v.get("op", "==")
        op = "" if op in ("==", "in") else op + " "
        return "%s %s%s" % (_render_inner(v.get("left")), op, _render_inner(v.get("right")))
    if k == "payload":
        return "%s %s" % (v.get("protocol"), v.get("field"))
    if k == "meta":
        return "meta %s" % v.get("key")
    if k == "ct":
        return "ct %s" % v.get("key")
    if k == "set":
        return "{ %s }" % ", ".join(_render_inner(x) for x in (v if isinstance(v, list) else [v]))
    if k == "prefix":
        return "%s/%s" % (v.get("addr"), v.get("len"))
    if k == "range":
        return "%s-%s" % (_render_inner(v[0]), _render_inner(v[1]))
    if k == "concat":
        return " . ".join(_render_inner(x) for x in v)
    if k in ("accept", "drop", "continue", "return"):
        return k
    if k in ("jump", "goto"):
        return "%s %s" % (k, v.get("target"))
    if k == "reject":
        if not v:
            return "reject"
        return ("reject with %s %s" % (v.get("type"), v.get("expr") or "")).strip()
    if k in ("dnat", "snat"):
        return "%s to %s%s" % (k, _render_inner(v.get("addr")), ":%s" % v["port"] if "port" in v else "")
    if k == "vmap":
        return "%s vmap %s" % (_render_inner(v.get("key")), _render_inner(v.get("data")))
    if k in ("counter", "log", "masquerade", "notrack"):
        return k
    return "%s %s" % (k, json.dumps(v, sort_keys=True))


_TABLE_RE = re.compile(r"^table\s+(\S+)\s+(\S+)\s*\{")
_CHAIN_RE = re.compile(r"^\s*chain\s+(\S+)\s*\{")
_HANDLE_RE = re.compile(r"^\s*(.*?)\s*# handle ([0-9]+)\s*$")


def texts_from_listing(text):
    """Map (family, table, chain, handle) -> rule text from ``nft -a list ruleset`` output."""
    out = {}
    family = table = chain = None
    for line in (text or "").splitlines():
        m = _TABLE_RE.match(line)
        if m:
            family, table, chain = m.group(1), m.group(2), None
            continue
        m = _CHAIN_RE.match(line)
        if m:
            chain = m.group(1)
            continue
        if line.startswith("\t}") or line.strip() == "}":
            if line.strip() == "}" and not line.startswith("\t"):
                family = table = None
            chain = None
            continue
        if chain is None:
            continue
        m = _HANDLE_RE.match(line)
        if m and m.group(1):
            out[(family, table, chain, int(m.group(2)))] = m.group(1)
    return out


# ----------------------------------------------------------------- the parser

def _priority(chain):
    prio = chain.get("prio")
    if isinstance(prio, bool):
        raise ParseError("chain %s has invalid priority %r" % (chain.get("name"), prio), source="nft JSON")
    if isinstance(prio, int):
        return prio
    if isinstance(prio, str) and prio in NFT_PRIORITIES:
        return NFT_PRIORITIES[prio]
    if isinstance(prio, str):
        m = re.match(r"^(\w+)\s*([+-])\s*([0-9]+)$", prio)
        if m and m.group(1) in NFT_PRIORITIES:
            base = NFT_PRIORITIES[m.group(1)]
            return base + int(m.group(3)) if m.group(2) == "+" else base - int(m.group(3))
    raise ParseError("chain %s has a priority the model does not know: %r" % (chain.get("name"), prio),
                     source="nft JSON")


def _set_entry(obj, kind):
    """A set or map object (fields already type-checked) -> the model's set entry."""
    name = obj["name"]
    keys = obj.get("type")
    keys = keys if isinstance(keys, list) else [keys]
    flags = obj.get("flags") or []
    entry = {"name": name, "keys": keys, "flags": [flags] if isinstance(flags, str) else list(flags),
             "map": obj.get("map") if kind == "map" else None, "elements": []}
    what = "%s %s of table %s %s" % (kind, name, obj["family"], obj["table"])
    if kind == "map" and obj.get("map") != "verdict":
        check_elements(len(obj.get("elem") or []), what, None)
        _check_elements(obj.get("elem") or [], True)
        entry["elements"] = None
        entry["unknown"] = "data map %s (only verdict maps are modelled)" % name
        return entry
    _add_elements(entry, obj.get("elem") or [], what)
    return entry


def _check_elements(elems, is_map):
    """Raise _Malformed when a map element is not a [key, value] pair."""
    for n, item in enumerate(elems):
        if is_map and (not isinstance(item, list) or len(item) != 2):
            raise _Malformed('element %d of "elem" is %s, expected a [key, value] pair' % (n + 1, _describe(item)))


def _add_elements(entry, elems, what):
    """Convert ``elems`` (a list) into ``entry``'s elements; values the model cannot express
    make the whole set unknown (its rules become indeterminate).  ParseError when the set (``what``)
    would hold more than MAX_SET_ELEMENTS."""
    is_vmap = entry.get("map") == "verdict"
    check_elements(len(entry.get("elements") or []) + len(elems), what, None)
    _check_elements(elems, entry.get("map") is not None)
    if entry.get("elements") is None:
        return  # already unknown
    converted = []
    # the key of a set is what the matching rule's left side says; elements are stored raw-converted
    try:
        if not is_vmap:  # most elements are plain strings or numbers, kept as they are
            converted = [item if type(item) in (str, int) else _set_value(item) for item in elems]
        for item in elems if is_vmap else ():
            verdict = _verdict_of(item[1])
            if verdict is None:
                raise _Unknown("map verdict %s" % _render(item[1]))
            converted.append([_set_value(item[0]), verdict])
    except (_Unknown, TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        entry["elements"] = None
        entry["unknown"] = "cannot model elements of set %s: %s" % (entry["name"], exc)
        return
    entry["elements"].extend(converted)


def _set_value(value):
    """Set element -> VALUE, keyless (types are resolved by the evaluator from the match key)."""
    if isinstance(value, dict) and "concat" in value:
        return [_scalar(v, None) for v in value["concat"]]
    return _scalar(value, None)


MAX_JSON_DEPTH = 64  # nft's own listings nest about a dozen levels


def _check_depth(data, source):
    """Refuse JSON nested deeper than MAX_JSON_DEPTH (the converters recurse), without recursing."""
    level, depth = [data], 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise ParseError("nftables JSON nested deeper than %d levels" % MAX_JSON_DEPTH, source=source)
        below = []
        for value in level:
            if isinstance(value, dict):
                below.extend(value.values())
            elif isinstance(value, list):
                below.extend(value)
        level = below


def parse_nft_json(data, text=None, source="nft -j list ruleset"):
    """Convert libnftables JSON (a str or the decoded dict) to a ruleset.

    Raises ParseError for input that is not an nftables JSON listing, and for objects of the
    wrong shape: the message names the object (``rule 3 of chain "input" ...``), the field
    and the value found; also for more than MAX_RULES rules or a set of more than
    MAX_SET_ELEMENTS elements.  Well-formed expressions the model does not know are not errors:
    they become ``unknown`` matches/verdicts (the evaluator answers ``indeterminate``).
    """
    with building():
        return _parse_nft_json(data, text, source)


def _parse_nft_json(data, text, source):
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise ParseError("not JSON: %s" % exc, source=source)
        except RecursionError:
            raise ParseError("JSON nested deeper than Python can read", source=source)
    _check_depth(data, source)
    if not isinstance(data, dict) or not isinstance(data.get("nftables"), list):
        raise ParseError("not an nftables JSON listing (no 'nftables' list)", source=source)
    check_rules(sum(1 for obj in data["nftables"] if isinstance(obj, dict) and "rule" in obj), source)
    texts = texts_from_listing(text) if text else {}
    ruleset = new_ruleset()
    tables, chains, rule_numbers = {}, {}, {}
    for i, obj in enumerate(data["nftables"]):
        if not isinstance(obj, dict) or len(obj) != 1:
            raise ParseError("nftables JSON: item %d is %s, expected an object with one key"
                             % (i, _describe(obj)), source=source)
        (kind, body), = obj.items()
        if kind in _FIELDS and not isinstance(body, dict):
            raise ParseError("nftables JSON: %s (item %d) is %s, expected an object" % (kind, i, _describe(body)),
                             source=source)
        if kind not in _FIELDS:
            # other objects (ct helper, counter, quota, flowtable, ...) do not change the walk by themselves
            if not isinstance(body, dict):
                raise ParseError("nftables JSON: %s (item %d) is %s, expected an object" % (kind, i, _describe(body)),
                                 source=source)
            continue
        number = None
        if kind == "rule":
            ckey = tuple(v if isinstance(v, str) else None
                         for v in (body.get("family"), body.get("table"), body.get("chain")))
            number = rule_numbers[ckey] = rule_numbers.get(ckey, 0) + 1
        where = _where(kind, i, body, number)
        try:
            _check_fields(kind, body, where)
            if kind != "metainfo":
                _parse_object(kind, body, where, ruleset, tables, chains, texts)
        except _Malformed as exc:
            raise ParseError("nftables JSON: %s" % exc, source=source)
        except ParseError as exc:
            raise ParseError(str(exc), source=source) if exc.source is None else exc
    _flag_iptables_nft(ruleset)
    try:
        return from_dict(quarantine_invalid(ruleset))
    except ParseError as exc:
        raise ParseError(str(exc), source=source)


def _parse_object(kind, body, where, ruleset, tables, chains, texts):
    """Add one table/chain/set/map/element/rule object (its fields checked) to the ruleset."""
    if kind == "table":
        tkey = (body["family"], body["name"])
        tables[tkey] = {"backend": BACKEND, "family": tkey[0], "name": tkey[1], "sets": {}, "chains": []}
        ruleset["tables"].append(tables[tkey])
        return
    tkey = (body["family"], body["table"])
    if tkey not in tables:
        raise _Malformed("%s refers to unknown table %s %s" % (where, tkey[0], tkey[1]))
    if kind == "chain":
        name = body["name"]
        hook = body.get("hook")
        chain = {"name": name, "type": body.get("type"), "hook": hook,
                 "priority": _priority(body) if hook else None,
                 "policy": body.get("policy") if hook else None, "rules": []}
        if hook and chain["policy"] is None:
            chain["policy"] = "accept"
        tables[tkey]["chains"].append(chain)
        chains[tkey + (name,)] = chain
    elif kind in ("set", "map"):
        try:
            tables[tkey]["sets"][body["name"]] = _set_entry(body, kind)
        except _Malformed as exc:
            raise _Malformed("%s: %s" % (where, exc))
    elif kind == "element":
        entry = tables[tkey]["sets"].get(body["name"])
        if entry is None:
            raise _Malformed("%s refers to unknown set %s" % (where, body["name"]))
        try:
            _add_elements(entry, body["elem"], "%s %s of table %s %s" % (
                "map" if entry.get("map") else "set", body["name"], tkey[0], tkey[1]))
        except _Malformed as exc:
            raise _Malformed("%s: %s" % (where, exc))
    elif kind == "rule":
        ckey = tkey + (body["chain"],)
        if ckey not in chains:
            raise _Malformed('%s refers to unknown chain "%s"' % (where, body["chain"]))
        handle = body.get("handle")
        try:
            matches, statements, verdict = convert_rule(body["expr"])
        except _Malformed as exc:
            raise _Malformed("%s: %s" % (where, exc))
        rule_text = texts.get(ckey + (handle,)) if handle is not None else None
        if rule_text is None:
            rule_text = " ".join(_render(e) for e in body["expr"])
            if body.get("comment"):
                rule_text += ' comment "%s"' % body["comment"]
        origin = {"backend": BACKEND, "family": tkey[0], "table": tkey[1], "chain": body["chain"],
                  "handle": handle, "text": rule_text}
        chains[ckey]["rules"].append({"matches": matches, "statements": statements,
                                      "verdict": verdict, "origin": origin})


_IPT_TABLES = ("filter", "nat", "mangle", "raw", "security")


def _flag_iptables_nft(ruleset):
    """Tables created by iptables-nft hold `xt` expressions we cannot model: say so."""
    for table in ruleset["tables"]:
        if table["family"] in ("ip", "ip6") and table["name"] in _IPT_TABLES:
            has_xt = any(m.get("key") == "unknown" and "xt " in m.get("reason", "")
                         for c in table["chains"] for r in c["rules"] for m in r["matches"])
            has_xt = has_xt or any((r.get("verdict") or {}).get("kind") == "unknown"
                                   and "xt " in r["verdict"].get("reason", "")
                                   for c in table["chains"] for r in c["rules"])
            upper = any(c["name"] in ("INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING")
                        for c in table["chains"])
            if has_xt or upper:
                table["managed_by"] = "iptables-nft"
                ruleset["warnings"].append(
                    "table %s %s looks managed by iptables-nft%s; prefer iptables-save for it"
                    % (table["family"], table["name"], " (holds xt expressions)" if has_xt else ""))


# ----------------------------------------------------------------- live reader

def _run_nft_binding():
    import nftables  # noqa: F401  (guarded by the caller)
    nft = nftables.Nftables()
    nft.set_json_output(True)
    rc, out, err = nft.cmd("list ruleset")
    if rc != 0:
        raise BackendUnavailable("nftables: list ruleset failed: %s" % (err or "").strip())
    nft.set_json_output(False)
    nft.set_handle_output(True)
    rc2, text, _err = nft.cmd("list ruleset")
    return out, text if rc2 == 0 else None


def _run_nft_command(nft_path="nft"):
    try:
        js = subprocess.run([nft_path, "-j", "list", "ruleset"], capture_output=True, text=True, timeout=60, check=False)
        txt = subprocess.run([nft_path, "-a", "list", "ruleset"], capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise MissingDependency("nft", package="nftables")
    if js.returncode != 0:
        raise BackendUnavailable("nft -j list ruleset failed (rc=%d): %s" % (js.returncode, js.stderr.strip()))
    return js.stdout, txt.stdout if txt.returncode == 0 else None


def read_nftables(use_binding=None, nft_path="nft"):
    """Read the live ruleset (needs root).  Returns (ruleset, how) where ``how`` names the reader.

    ``use_binding``: None = the Python binding when importable, else ``nft``; True/False force.
    """
    binding_ok = False
    if use_binding is not False:
        try:
            import nftables  # noqa: F401
            binding_ok = True
        except ImportError:
            if use_binding:
                raise MissingDependency("nftables", package="python3-nftables")
    if binding_ok:
        out, text = _run_nft_binding()
        how = "python3-nftables"
    else:
        out, text = _run_nft_command(nft_path)
        how = "nft -j list ruleset"
    if not out.strip():
        out = '{"nftables": []}'
    return parse_nft_json(out, text=text, source=how), how
