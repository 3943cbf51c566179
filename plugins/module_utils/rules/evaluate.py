# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Walk a packet through a rule model the way the kernel would.

``Evaluator(ruleset)`` compiles the model once; ``.evaluate(packet, path='input')`` returns::

    {"verdict": "accept" | "drop" | "reject" | "indeterminate",
     "reply": None | {"kind": "rst"} | {"kind": "icmp", "family", "type", "code", "name"},
     "rule": ORIGIN or None,       # the deciding rule (None when a policy or nothing decided)
     "policy": bool,               # decided by a base chain's policy
     "chain": {"backend", "family", "table", "chain", "hook", "priority"} or None,
     "trace": [ORIGIN, ...],       # every rule that matched on the way, in order
     "nat": None | {"dst", "dport", "rule"},
     "hooks": [hook, ...],         # the hooks walked
     "accepts": [{"chain", "rule": ORIGIN or None, "policy": bool}, ...],  # each base chain that accepted
     "reason": str}

Semantics (see docs/rule-model.md): base chains of every table whose family applies are
walked by hook then priority; each must accept.  Within a chain rules are tried in order;
a rule matches when every match holds; a match that cannot be decided (unknown expression,
packet field not given) makes the result ``indeterminate`` unless another match of the same
rule is already false.
"""

from __future__ import annotations

import bisect
import ipaddress

from ansible_collections.netdiag.reachability.plugins.module_utils._common import icmp
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import is_digits, parse_number
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.model import (
    CT_STATES, ICMP4_TYPE_NUMBERS, ICMP6_TYPE_NUMBERS, L4PROTO_ALIASES, L4PROTO_NUMBERS,
    PORT_PROTOS, from_dict, number_range,
)

PATHS = {
    "input": ("prerouting", "input"),
    "forward": ("prerouting", "forward", "postrouting"),
    "output": ("output", "postrouting"),
}
_TABLE_FAMILIES = {"inet": ("ipv4", "ipv6"), "ip": ("ipv4",), "ip6": ("ipv6",)}
MAX_DEPTH = 64
_INDEX_LIMIT = 1024  # a dport match with at most this many ports is indexed

_RETURN = object()
_MARKING = ("mangle", "mark")


class _Indeterminate(Exception):
    def __init__(self, reason, origin=None):
        super().__init__(reason)
        self.reason = reason
        self.origin = origin


# ----------------------------------------------------------------- packets

def _addr(value, family, what):
    try:
        ip = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise InputError("invalid %s address %r" % (what, value))
    fam = "ipv4" if ip.version == 4 else "ipv6"
    if family and fam != family:
        raise InputError("%s address %r is not %s" % (what, value, family))
    return fam, int(ip)


def _proto(value):
    if isinstance(value, int) and not isinstance(value, bool):
        if value in L4PROTO_NUMBERS:
            return L4PROTO_NUMBERS[value]
        raise InputError("invalid protocol %r" % (value,))
    text = str(value).strip().lower()
    if is_digits(text):
        return _proto(int(text))
    text = L4PROTO_ALIASES.get(text, text)
    if text not in L4PROTO_NUMBERS.values():
        raise InputError("invalid protocol %r: expected one of %s" % (value, ", ".join(sorted(L4PROTO_NUMBERS.values()))))
    return text


def _port(value, what):
    if not isinstance(value, (int, str)):
        raise InputError("invalid %s %r: not a number" % (what, value))
    return parse_number(value, what, 0, 65535)


def normalise_packet(packet):
    """Validate a packet dict and return the evaluator's internal form (raises InputError)."""
    if not isinstance(packet, dict):
        raise InputError("a packet is a dict, got %r" % (packet,))
    unknown = set(packet) - {"family", "proto", "src", "dst", "sport", "dport", "iif", "oif", "ct_state",
                             "ct_status", "icmp_type", "icmp_code", "mark", "dst_type", "src_type", "tcp_flags", "rt_type"}
    if unknown:
        raise InputError("unknown packet keys: %s" % ", ".join(sorted(unknown)))
    family = packet.get("family")
    if family is not None:
        family = {"ipv4": "ipv4", "ip": "ipv4", "4": "ipv4", "ipv6": "ipv6", "ip6": "ipv6", "6": "ipv6"}.get(
            str(family).lower())
        if family is None:
            raise InputError("invalid family %r: expected ipv4 or ipv6" % (packet.get("family"),))
    out = {}
    for key in ("src", "dst"):
        if packet.get(key) is not None:
            fam, value = _addr(packet[key], family, key)
            family = family or fam
            out[key] = value
    if family is None:
        raise InputError("packet needs a family (ipv4/ipv6) or an address")
    out["family"] = family
    if packet.get("proto") is None:
        raise InputError("packet needs a proto (tcp, udp, icmp, ...)")
    proto = _proto(packet["proto"])
    if proto == "icmp" and family == "ipv6":
        proto = "ipv6-icmp"
    out["proto"] = proto
    for key in ("sport", "dport"):
        if packet.get(key) is not None:
            if proto not in PORT_PROTOS:
                raise InputError("%s %r given for protocol %s, which has no ports" % (key, packet[key], proto))
            out[key] = _port(packet[key], key)
    for key in ("iif", "oif"):
        if packet.get(key) is not None:
            if not isinstance(packet[key], str) or not packet[key]:
                raise InputError("invalid %s %r: expected an interface name" % (key, packet[key]))
            out[key] = packet[key]
    state = str(packet.get("ct_state") or "new").lower()
    if state not in CT_STATES:
        raise InputError("invalid ct_state %r: expected one of %s" % (packet.get("ct_state"), ", ".join(CT_STATES)))
    out["ct_state"] = state
    status = packet.get("ct_status") or []
    out["ct_status"] = frozenset([status] if isinstance(status, str) else status)
    if packet.get("icmp_type") is not None:
        if not proto.endswith("icmp"):
            raise InputError("icmp_type %r given for protocol %s" % (packet["icmp_type"], proto))
        out["icmp_type"] = _icmp_type(packet["icmp_type"], family)
        if out["icmp_type"] is None:
            raise InputError("invalid icmp_type %r" % (packet["icmp_type"],))
    elif proto.endswith("icmp"):
        out["icmp_type"] = 8 if family == "ipv4" else 128  # the probe's echo-request
    if packet.get("icmp_code") is not None:
        out["icmp_code"] = _port(packet["icmp_code"], "icmp_code")
    mark = packet.get("mark", 0)
    if isinstance(mark, bool) or not isinstance(mark, int) or mark < 0:
        raise InputError("invalid mark %r: expected a non-negative integer" % (mark,))
    out["mark"] = mark  # packets arrive unmarked unless a rule sets a mark (then it becomes unknown)
    for key in ("dst_type", "src_type"):
        if packet.get(key) is not None:
            out[key] = str(packet[key]).upper()
    if packet.get("tcp_flags") is not None:
        out["tcp_flags"] = frozenset(str(f).lower() for f in packet["tcp_flags"])
    elif proto == "tcp" and state == "new":
        out["tcp_flags"] = frozenset(["syn"])  # the first packet of a new TCP connection
    return out


def _icmp_type(value, family):
    """A type number (0-255, the field is one byte) or name; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= 255 else None
    text = str(value).strip().lower()
    if is_digits(text):
        return int(text) if int(text) <= 255 else None
    table = ICMP6_TYPE_NUMBERS if family == "ipv6" else ICMP4_TYPE_NUMBERS
    return table.get(text)


def _addr_type(pkt, which, path_hook):
    """LOCAL/UNICAST/BROADCAST/MULTICAST of src or dst (iptables addrtype, documented assumption)."""
    given = pkt.get(which + "_type")
    if given:
        return given
    value = pkt.get(which[:3])
    if value is None:
        if which == "dst" and pkt.get("_path") == "input" and path_hook in ("prerouting", "input"):
            return "LOCAL"  # a packet for this host, address not given
        return None
    if pkt["family"] == "ipv4":
        if value == 0xFFFFFFFF:
            return "BROADCAST"
        if (value >> 28) == 0xE:
            return "MULTICAST"
    elif (value >> 120) == 0xFF:
        return "MULTICAST"
    if which == "dst" and path_hook in ("prerouting", "input"):
        return "LOCAL" if pkt.get("_path") == "input" else "UNICAST"
    return "UNICAST"


# ----------------------------------------------------------------- compiling matches

def _parse_net(text, family_hint=None):
    """'10.0.0.0/24' | '10.0.0.1-10.0.0.9' | '10.0.0.1' -> (family, lo, hi)."""
    if isinstance(text, list) and len(text) == 2:
        text = "%s-%s" % (text[0], text[1])
    text = str(text)
    if "-" in text and "/" not in text:
        a, b = text.split("-", 1)
        lo, hi = ipaddress.ip_address(a.strip()), ipaddress.ip_address(b.strip())
        return ("ipv4" if lo.version == 4 else "ipv6"), int(lo), int(hi)
    net = ipaddress.ip_network(text.strip(), strict=False)
    return ("ipv4" if net.version == 4 else "ipv6"), int(net.network_address), int(net.broadcast_address)


class _IntervalSet:
    __slots__ = ("exact", "starts", "ranges")

    def __init__(self, pairs):
        self.exact = set()
        ranges = []
        for lo, hi in pairs:
            if lo == hi:
                self.exact.add(lo)
            else:
                ranges.append((lo, hi))
        ranges.sort()
        merged = []
        for lo, hi in ranges:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        self.ranges = merged
        self.starts = [r[0] for r in merged]

    def __contains__(self, v):
        if v in self.exact:
            return True
        if not self.ranges:
            return False
        i = bisect.bisect_right(self.starts, v) - 1
        return i >= 0 and self.ranges[i][1] >= v


def _value_tester(key, values):
    """Compile VALUEs for one key into a function(pkt_value, pkt) -> bool.  Raises ValueError."""
    if key in ("src", "dst", "ct_orig_src", "ct_orig_dst", "ct_repl_src", "ct_repl_dst"):
        per_family = {"ipv4": [], "ipv6": []}
        for v in values:
            fam, lo, hi = _parse_net(v)
            per_family[fam].append((lo, hi))
        sets = {fam: _IntervalSet(p) for fam, p in per_family.items()}
        return lambda v, pkt: v in sets[pkt["family"]]
    if key in ("sport", "dport", "icmp_code", "mark", "rt_type", "ct_orig_sport", "ct_orig_dport",
               "ct_repl_sport", "ct_repl_dport"):
        iset = _IntervalSet([number_range(key, v) for v in values])
        return lambda v, pkt: v in iset
    if key == "icmp_type":
        v4, v6 = [], []
        for v in values:
            if isinstance(v, (list, int)):
                v4.append(number_range(key, v))
                v6.append(v4[-1])
            else:
                name = str(v).lower()
                if name not in ICMP4_TYPE_NUMBERS and name not in ICMP6_TYPE_NUMBERS:
                    raise ValueError("unknown ICMP type %r" % v)
                if ICMP4_TYPE_NUMBERS.get(name) is not None:
                    v4.append((ICMP4_TYPE_NUMBERS[name],) * 2)
                if ICMP6_TYPE_NUMBERS.get(name) is not None:
                    v6.append((ICMP6_TYPE_NUMBERS[name],) * 2)
        s4, s6 = _IntervalSet(v4), _IntervalSet(v6)
        return lambda v, pkt: v in (s6 if pkt["family"] == "ipv6" else s4)
    if key == "proto":
        names = set()
        for v in values:
            if isinstance(v, int):
                names.add(L4PROTO_NUMBERS.get(v, v))
            else:
                names.add(L4PROTO_ALIASES.get(str(v).lower(), str(v).lower()))
        return lambda v, pkt: v in names
    if key in ("iif", "oif"):
        exact, prefixes = set(), []
        for v in values:
            v = str(v)
            if v.endswith("*") or v.endswith("+"):
                prefixes.append(v[:-1])
            else:
                exact.add(v)
        prefixes = tuple(prefixes)
        return lambda v, pkt: v in exact or (bool(prefixes) and v.startswith(prefixes))
    if key in ("ct_state", "family", "ct_direction"):
        names = {str(v).lower() for v in values}
        return lambda v, pkt: v in names
    if key == "ctstate":  # iptables --ctstate: states, or the virtual states dnat/snat
        names = {str(v).lower() for v in values}
        return lambda v, pkt: v in names or bool(names & pkt["ct_status"])
    if key in ("ct_status", "tcp_flags"):
        names = {str(v).lower() for v in values}
        return lambda v, pkt: bool(names & v)
    if key in ("dst_type", "src_type"):
        names = {str(v).upper() for v in values}
        return lambda v, pkt: v in names
    raise ValueError("key %r" % key)


# conntrack's tuples, for a packet of the original direction: the original tuple is the packet as it
# arrived (before any DNAT), the reply tuple the addresses after NAT, swapped (Docker's DOCKER-USER
# documentation matches --ctorigdst/--ctorigdstport because the chain sees packets after DNAT)
_CT_TUPLE = {"ct_orig_src": "_orig_src", "ct_orig_dst": "_orig_dst", "ct_orig_sport": "_orig_sport",
             "ct_orig_dport": "_orig_dport", "ct_repl_src": "dst", "ct_repl_dst": "src", "ct_repl_sport": "dport",
             "ct_repl_dport": "sport"}


def _get(pkt, key):
    if key in _CT_TUPLE:
        return pkt.get(_CT_TUPLE[key])
    if key == "ct_direction":
        return "original"   # the evaluator follows a connection's packets from its initiator
    if key in ("dst_type", "src_type"):
        return _addr_type(pkt, key[:3], pkt.get("_hook"))
    if key == "ctstate":
        return pkt["ct_state"]
    if key == "rt_type":
        return pkt.get("rt_type", -1)  # no IPv6 routing header unless the packet says so
    if key == "mark" and pkt.get("mark") is None:
        return None
    return pkt.get(key)


def _compile_requires(req):
    fam = req.get("family")
    protos = frozenset(req["proto"]) if "proto" in req else None
    if fam is None and protos is None:
        return None

    def check(pkt):
        if fam is not None and pkt["family"] != fam:
            return False
        if protos is not None and pkt["proto"] not in protos:
            return False
        return True
    return check


def _compile_values(key, match, table):
    if "set" in match:
        name = match["set"]
        sets = table.get("sets") or {}
        if name not in sets:
            raise ValueError("set @%s is not in the listing" % name)
        entry = sets[name]
        if entry.get("elements") is None:
            raise ValueError(entry.get("unknown") or "set @%s has no modelled elements" % name)
        if entry.get("map"):
            raise ValueError("@%s is a map, not a set" % name)
        return entry["elements"]
    return match["values"]


def _concat_tester(keys, values):
    testers = []
    for i, k in enumerate(keys):
        testers.append(_value_tester(k, [v[i] for v in values]))
    # each element is tested component-wise; keep per-element testers for exactness
    elems = [[_value_tester(k, [v[i]]) for i, k in enumerate(keys)] for v in values]

    def test(vals, pkt):
        for comp in elems:
            for t, v in zip(comp, vals):
                if not t(v, pkt):
                    break
            else:
                return True
        return False
    return test


def _compile_match(match, table):
    """-> function(pkt) returning True, False or a str (the reason it cannot be decided)."""
    key = match.get("key")
    if key == "unknown":
        reason = match.get("reason") or "unknown match"
        return lambda pkt: reason
    requires = _compile_requires(match.get("requires") or {})
    negate = bool(match.get("negate"))
    try:
        values = _compile_values(key, match, table)
        if isinstance(key, list):
            test = _concat_tester(key, values)
            keys = tuple(key)
        else:
            test = _value_tester(key, values)
            keys = None
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        reason = "cannot model match on %s: %s" % (key, exc)
        return lambda pkt: reason

    if keys is None:
        def check(pkt):
            if requires is not None and not requires(pkt):
                return False
            v = _get(pkt, key)
            if v is None:
                return "the packet has no %s (a rule tests it)" % key
            return test(v, pkt) != negate
    else:
        def check(pkt):
            if requires is not None and not requires(pkt):
                return False
            vals = []
            for k in keys:
                v = _get(pkt, k)
                if v is None:
                    return "the packet has no %s (a rule tests it)" % k
                vals.append(v)
            return test(vals, pkt) != negate
    return check


def _index_ports(match):
    """Ports a positive dport match accepts, if few enough to index; else None."""
    if match.get("key") != "dport" or match.get("negate") or "values" not in match:
        return None
    ports = []
    for v in match["values"]:
        if not isinstance(v, (list, int)):
            return None
        try:
            lo, hi = number_range("dport", v)
        except ValueError:
            return None  # the match itself is indeterminate: keep the rule with the generic ones
        if hi - lo > _INDEX_LIMIT:
            return None
        ports.extend(range(lo, hi + 1))
        if len(ports) > _INDEX_LIMIT:
            return None
    return ports


class _Rule:
    __slots__ = ("checks", "verdict", "origin", "statements", "vmap", "vmap_requires", "ports")

    def __init__(self, rule, table, evaluator):
        self.checks = [_compile_match(m, table) for m in rule.get("matches") or []]
        self.verdict = rule.get("verdict")
        self.origin = rule.get("origin") or {}
        self.statements = rule.get("statements") or []
        self.vmap = None
        self.vmap_requires = None
        if self.verdict and self.verdict.get("kind") == "vmap":
            self.vmap, self.vmap_requires = evaluator._compile_vmap(self.verdict, table)

    def test(self, pkt):
        reason = None
        for check in self.checks:
            r = check(pkt)
            if r is False:
                return False
            if r is not True and reason is None:
                reason = r
        return True if reason is None else reason


class _Chain:
    __slots__ = ("name", "table", "table_index", "rules", "generic", "by_port", "cache", "meta")

    def __init__(self, chain, table, table_index, evaluator):
        self.name = chain["name"]
        self.table = table
        self.table_index = table_index
        self.meta = {"backend": table["backend"], "family": table["family"], "table": table["name"],
                     "chain": chain["name"], "hook": chain.get("hook"), "priority": chain.get("priority"),
                     "policy": chain.get("policy"), "type": chain.get("type")}
        compiled = []
        for rule in chain.get("rules") or []:
            verdict = rule.get("verdict")
            harmless = verdict is None and all(
                s.get("kind") in ("counter", "log", "comment") for s in rule.get("statements") or [])
            if harmless:
                continue  # counters, logs, comments do not change the walk
            c = _Rule(rule, table, evaluator)
            c.ports = None
            for m in rule.get("matches") or []:
                c.ports = _index_ports(m)
                if c.ports is not None:
                    break
            compiled.append(c)
        self.reindex(compiled)

    def reindex(self, rules):
        self.rules = rules
        self.generic = []
        self.by_port = {}
        for pos, rule in enumerate(rules):
            if rule.ports is None:
                self.generic.append(pos)
            else:
                for p in rule.ports:
                    self.by_port.setdefault(p, []).append(pos)
        self.cache = {}

    def candidates(self, pkt):
        dport = pkt.get("dport")
        if dport is None or not self.by_port:
            return range(len(self.rules))
        got = self.cache.get(dport)
        if got is None:
            got = tuple(sorted(self.generic + self.by_port.get(dport, [])))
            self.cache[dport] = got
        return got


class Evaluator:
    """Compiled form of one ruleset; evaluate many packets against it."""

    def __init__(self, ruleset):
        ruleset = from_dict(ruleset)
        self.warnings = list(ruleset.get("warnings") or [])
        self.chains = {}
        self.base = []
        for ti, table in enumerate(ruleset["tables"]):
            fams = _TABLE_FAMILIES.get(table["family"])
            for chain in table["chains"]:
                compiled = _Chain(chain, table, ti, self)
                self.chains[(ti, chain["name"])] = compiled
                if chain.get("hook") and fams:
                    self.base.append((chain["hook"], chain["priority"], ti, compiled, fams))
                elif chain.get("hook") and table["family"] in ("netdev", "bridge", "arp"):
                    self.warnings.append("%s chain %s %s %s is not walked (only ip/ip6/inet hooks are modelled)"
                                         % (chain["hook"], table["family"], table["name"], chain["name"]))
        self.base.sort(key=lambda b: (b[1], b[2]))
        self._drop_effect_free_jumps(ruleset)

    def _drop_effect_free_jumps(self, ruleset):
        """A jump to a chain that can only log, count or return changes nothing: skip such rules
        (ufw jumps to rate-limited logging chains).

        A chain is effect-free when its own rules only log, count, return or jump to effect-free
        chains.  Solved with a work list over the jump graph (each chain and each jump is visited
        once), so a saved chain of jumps thousands deep compiles in linear time; a loop of jumps is
        never effect-free."""
        pending = {}     # chain -> effect-free chains it still waits for
        waiting = {}     # chain -> chains whose verdict waits on it
        ready = []
        for ti, table in enumerate(ruleset["tables"]):
            for chain in table["chains"]:
                key = (ti, chain["name"])
                if chain.get("hook") or key in pending:
                    continue
                targets = set()
                ok = True
                for rule in chain["rules"]:
                    v = rule.get("verdict") or {}
                    if any(st.get("kind") not in ("counter", "log", "comment") for st in rule.get("statements") or []):
                        ok = False
                    elif v.get("kind") in ("jump", "goto"):
                        target = (ti, v.get("target"))
                        if target == key:
                            ok = False
                        else:
                            targets.add(target)
                    elif v.get("kind") not in (None, "return", "continue"):
                        ok = False
                    if not ok:
                        break
                if not ok:
                    continue
                pending[key] = len(targets)
                for target in targets:
                    waiting.setdefault(target, []).append(key)
                if not targets:
                    ready.append(key)
        free = set()
        while ready:
            key = ready.pop()
            free.add(key)
            for parent in waiting.get(key, ()):
                pending[parent] -= 1
                if pending[parent] == 0:
                    ready.append(parent)
        for (ti, _name), chain in self.chains.items():
            keep = [r for r in chain.rules if not (
                r.verdict and r.verdict.get("kind") == "jump" and (ti, r.verdict.get("target")) in free
                and all(st.get("kind") in ("counter", "log", "comment") for st in r.statements))]
            if len(keep) != len(chain.rules):
                chain.reindex(keep)

    def _compile_vmap(self, verdict, table):
        requires = _compile_requires(verdict.get("requires") or {})
        key = verdict["key"]
        try:
            if "set" in verdict:
                entry = (table.get("sets") or {}).get(verdict["set"])
                if entry is None or entry.get("elements") is None:
                    raise ValueError((entry or {}).get("unknown") or "map @%s is not in the listing" % verdict["set"])
                items = entry["elements"]
            else:
                items = verdict["map"]
            compiled = []
            for value, v in items:
                if isinstance(key, list):
                    tester = _concat_tester(key, [value])
                else:
                    tester = _value_tester(key, [value])
                compiled.append((tester, v))
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            reason = "cannot model vmap on %s: %s" % (key, exc)
            return reason, requires
        return (key, compiled), requires

    # ------------------------------------------------------------- walking

    def _vmap_lookup(self, rule, pkt):
        if isinstance(rule.vmap, str):
            raise _Indeterminate(rule.vmap, rule.origin)
        if rule.vmap_requires is not None and not rule.vmap_requires(pkt):
            return None
        key, compiled = rule.vmap
        keys = key if isinstance(key, list) else [key]
        vals = []
        for k in keys:
            v = _get(pkt, k)
            if v is None:
                raise _Indeterminate("the packet has no %s (a verdict map tests it)" % k, rule.origin)
            vals.append(v)
        probe = vals if isinstance(key, list) else vals[0]
        for tester, verdict in compiled:
            if tester(probe, pkt):
                return verdict
        return None

    def _run(self, chain, pkt, ctx, depth):
        if depth > MAX_DEPTH:
            raise _Indeterminate("jumps nest deeper than %d (a loop?) at chain %s" % (MAX_DEPTH, chain.name))
        rules = chain.rules
        for i in chain.candidates(pkt):
            rule = rules[i]
            r = rule.test(pkt)
            if r is False:
                continue
            if r is not True:
                raise _Indeterminate(r, rule.origin)
            verdict = rule.verdict
            if rule.vmap is not None:
                verdict = self._vmap_lookup(rule, pkt)
                if verdict is None:
                    continue
            ctx["trace"].append(rule.origin)
            for st in rule.statements:
                if st.get("kind") in _MARKING:
                    pkt["mark"] = None  # the model does not track the value a rule sets
            if verdict is None:
                continue
            res = self._apply(verdict, rule, chain, pkt, ctx, depth)
            if res is None:
                continue
            return res
        return _RETURN

    def _apply(self, verdict, rule, chain, pkt, ctx, depth):
        kind = verdict.get("kind")
        if kind == "continue":
            return None
        if kind == "return":
            return _RETURN
        if kind in ("accept", "drop"):
            return (kind, rule.origin, None)
        if kind == "reject":
            return ("reject", rule.origin, verdict)
        if kind in ("jump", "goto"):
            target = self.chains.get((chain.table_index, verdict["target"]))
            if target is None:
                raise _Indeterminate("%s to chain %s, which is not in the listing" % (kind, verdict["target"]),
                                     rule.origin)
            res = self._run(target, pkt, ctx, depth + 1)
            if kind == "jump" and res is _RETURN:
                return None
            return res
        if kind in ("dnat", "redirect"):
            if ctx["hook"] not in ("prerouting", "output"):
                raise _Indeterminate("%s outside prerouting/output" % kind, rule.origin)
            self._dnat(verdict, rule, pkt, ctx)
            return ("accept", rule.origin, None)
        if kind in ("snat", "masquerade"):
            return ("accept", rule.origin, None)
        reason = verdict.get("reason") or "cannot model verdict %r" % kind
        raise _Indeterminate(reason, rule.origin)

    def _dnat(self, verdict, rule, pkt, ctx):
        if verdict["kind"] == "redirect":
            new_dst = pkt.get("dst")
        else:
            addr = verdict.get("addr")
            if addr is None:
                new_dst = pkt.get("dst")
            else:
                try:
                    fam, new_dst = _addr(addr, pkt["family"], "dnat")
                except InputError as exc:
                    raise _Indeterminate("cannot model dnat to %r: %s" % (addr, exc), rule.origin)
        port = verdict.get("port")
        if port is not None:
            text = str(port)
            try:
                port = int(text.split("-", maxsplit=1)[0])
            except ValueError:
                raise _Indeterminate("cannot model dnat to port %r" % (verdict.get("port"),), rule.origin)
            pkt["dport"] = port
        pkt["dst"] = new_dst
        pkt["ct_status"] = pkt["ct_status"] | {"dnat"}
        fam = pkt["family"]
        ctx["nat"] = {"dst": str(ipaddress.ip_address(new_dst)) if new_dst is not None else None,
                      "dport": pkt.get("dport"), "rule": rule.origin,
                      "family": fam}

    def evaluate(self, packet, path="input", local_addresses=None):
        """Evaluate one packet.  ``path``: input | forward | output.

        ``local_addresses``: the host's own addresses; used to decide whether a packet whose
        destination was rewritten by DNAT still goes to input or is forwarded.
        """
        if path not in PATHS:
            raise InputError("invalid path %r: expected one of %s" % (path, ", ".join(PATHS)))
        pkt = normalise_packet(packet)
        return self.evaluate_normalised(pkt, path, local_addresses)

    def evaluate_normalised(self, pkt, path="input", local_addresses=None):
        pkt = dict(pkt)
        pkt["_path"] = path
        for k in ("src", "dst", "sport", "dport"):
            pkt["_orig_" + k] = pkt.get(k)
        ctx = {"trace": [], "nat": None, "hook": None, "accepts": []}
        hooks = list(PATHS[path])
        walked = []
        notes = []
        original_dst = pkt.get("dst")
        i = 0
        while i < len(hooks):
            hook = hooks[i]
            ctx["hook"] = hook
            pkt["_hook"] = hook
            walked.append(hook)
            for bhook, prio, _ti, chain, fams in self.base:
                if bhook != hook or pkt["family"] not in fams:
                    continue
                if chain.meta["type"] == "nat" and pkt["ct_state"] != "new":
                    continue  # nat chains only see the first packet of a connection
                try:
                    res = self._run(chain, pkt, ctx, 0)
                except _Indeterminate as exc:
                    return self._result("indeterminate", None, exc.origin, False, chain, ctx, walked,
                                        exc.reason, notes)
                if res is _RETURN:
                    if chain.meta["policy"] != "drop":
                        ctx["accepts"].append({"chain": _chain_ref(chain), "rule": None, "policy": True})
                    if chain.meta["policy"] == "drop":
                        return self._result("drop", None, None, True, chain, ctx, walked,
                                            "policy drop of %s chain %s %s %s" % (
                                                hook, chain.meta["family"], chain.meta["table"], chain.name),
                                            notes)
                    continue
                kind, origin, rej = res
                if kind == "accept":
                    ctx["accepts"].append({"chain": _chain_ref(chain), "rule": origin, "policy": False})
                    continue
                if kind == "drop":
                    return self._result("drop", None, origin, False, chain, ctx, walked,
                                        "dropped by %s" % _where(origin), notes)
                reply = self._reply(rej, pkt)
                if reply is None:
                    return self._result("indeterminate", None, origin, False, chain, ctx, walked,
                                        "reject of a kind the model does not know: %r" % (rej,), notes)
                return self._result("reject", reply, origin, False, chain, ctx, walked,
                                    "rejected by %s" % _where(origin), notes)
            if hook == "prerouting" and ctx["nat"] is not None and pkt.get("dst") != original_dst:
                if local_addresses is not None:
                    local = {_addr(a, None, "local")[1] for a in local_addresses}
                    is_local = pkt["dst"] in local
                else:
                    is_local = False
                    notes.append("DNAT changed the destination; assumed not local (pass local_addresses to decide)")
                new_path = "input" if is_local else "forward"
                if new_path != path:
                    path = new_path
                    pkt["_path"] = path
                    hooks = list(PATHS[path])
            i += 1
        return self._result("accept", None, None, False, None, ctx, walked,
                            "every base chain on the path accepted", notes)

    def _reply(self, rej, pkt):
        fam = pkt["family"]
        if rej.get("backend") == "iptables":
            reply = icmp.ipt_reject_reply(fam, rej.get("with"))
        else:
            reply = icmp.nft_reject_reply(fam, rej.get("type"), rej.get("expr"))
        if reply is None:
            return None
        if reply.get("kind") == "rst" and pkt["proto"] != "tcp":
            return None
        if reply.get("kind") == "icmp" and reply.get("family", fam) != fam:
            return None
        return dict(reply)

    def _result(self, verdict, reply, origin, policy, chain, ctx, walked, reason, notes):
        return {"verdict": verdict, "reply": reply, "rule": origin, "policy": policy,
                "chain": None if chain is None else _chain_ref(chain),
                "trace": list(ctx["trace"]), "nat": ctx["nat"], "hooks": walked, "accepts": list(ctx["accepts"]),
                "reason": reason if not notes else "%s (%s)" % (reason, "; ".join(notes)),
                "warnings": list(self.warnings)}


def _chain_ref(chain):
    return {k: chain.meta[k] for k in ("backend", "family", "table", "chain", "hook", "priority")}


def _where(origin):
    origin = origin or {}
    ref = "handle %s" % origin["handle"] if origin.get("handle") is not None else "line %s" % origin.get("line")
    return "%s rule '%s' (%s %s %s, chain %s, %s)" % (
        origin.get("backend"), origin.get("text"), origin.get("family"), origin.get("table"), "table",
        origin.get("chain"), ref)


def evaluate(ruleset, packet, path="input", local_addresses=None):
    """One-shot helper: compile ``ruleset`` and evaluate ``packet``."""
    return Evaluator(ruleset).evaluate(packet, path=path, local_addresses=local_addresses)
