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

import array
import bisect
import ipaddress
import itertools
import socket
import sys

from ansible_collections.netdiag.reachability.plugins.module_utils._common import icmp
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import is_digits, parse_number
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.model import (
    CT_STATES, ICMP4_TYPE_NUMBERS, ICMP6_TYPE_NUMBERS, L4PROTO_ALIASES, L4PROTO_NUMBERS,
    PORT_PROTOS, building, from_dict, number_range,
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

_ADDR_KEYS = ("src", "dst", "ct_orig_src", "ct_orig_dst", "ct_repl_src", "ct_repl_dst")
_NUM_KEYS = ("sport", "dport", "icmp_code", "mark", "rt_type", "ct_orig_sport", "ct_orig_dport",
             "ct_repl_sport", "ct_repl_dport")
_NAME_KEYS = ("ct_state", "family", "ct_direction")
_VALUE_KEYS = _ADDR_KEYS + _NUM_KEYS + _NAME_KEYS + (
    "icmp_type", "proto", "iif", "oif", "ctstate", "ct_status", "tcp_flags", "dst_type", "src_type")
_SMALL = 4096  # up to this many single values are kept in a hash set; more in a sorted array (8 bytes each)
_PTON, _NTOP, _AF_INET = socket.inet_pton, socket.inet_ntop, socket.AF_INET


def _fast_ip(text):
    """(family, int) of an address string, by the C library, or None: then ``ipaddress`` decides.

    ``inet_pton`` reads an IPv4 address only as four decimal numbers 0-255 without leading zeros
    (glibc, musl and the BSDs), which is what ``ipaddress`` reads; an IPv6 address is taken only in
    the spelling ``inet_ntop`` gives back (nft's), so scope ids and odd spellings go to ``ipaddress``."""
    try:
        if ":" not in text:
            return "ipv4", int.from_bytes(_PTON(_AF_INET, text), "big")
        packed = _PTON(socket.AF_INET6, text)
    except (OSError, TypeError, ValueError):
        return None
    if _NTOP(socket.AF_INET6, packed) != text:
        return None
    return "ipv6", int.from_bytes(packed, "big")


def _parse_net(text, family_hint=None):
    """'10.0.0.0/24' | '10.0.0.1-10.0.0.9' | '10.0.0.1' -> (family, lo, hi).  Raises ValueError."""
    if isinstance(text, list) and len(text) == 2:
        text = "%s-%s" % (text[0], text[1])
    text = str(text)
    if "-" in text and "/" not in text:
        a, b = text.split("-", 1)
        fa, fb = _fast_ip(a.strip()), _fast_ip(b.strip())
        if fa is not None and fb is not None:
            return fa[0], fa[1], fb[1]
        lo, hi = ipaddress.ip_address(a.strip()), ipaddress.ip_address(b.strip())
        return ("ipv4" if lo.version == 4 else "ipv6"), int(lo), int(hi)
    addr, slash, plen = text.strip().partition("/")
    fast = _fast_ip(addr)
    if fast is not None and (not slash or is_digits(plen)):
        bits = 32 if fast[0] == "ipv4" else 128
        length = int(plen) if slash else bits
        if length <= bits:
            host = (1 << (bits - length)) - 1
            return fast[0], fast[1] & ~host, fast[1] | host
    net = ipaddress.ip_network(text.strip(), strict=False)
    return ("ipv4" if net.version == 4 else "ipv6"), int(net.network_address), int(net.broadcast_address)


class _IntervalSet:
    """A set of ints: single values (``points``) and ``(lo, hi)`` ranges, for membership tests.

    Few single values are kept in a hash set, many in a sorted array (a million IPv4 addresses take
    8 MiB); ranges are merged into sorted disjoint intervals.  A lookup is a hash probe or a bisection,
    O(log n).  Reversed ranges (lo > hi) hold nothing."""
    __slots__ = ("points", "sorted_points", "starts", "ends")

    def __init__(self, points=(), ranges=()):
        self.points = self.sorted_points = None
        if len(points) <= _SMALL:
            self.points = frozenset(points)
        else:
            self.sorted_points = _int_array(sorted(set(points)))
        starts, ends = [], []
        for lo, hi in sorted(ranges):
            if lo > hi:
                continue
            if ends and lo <= ends[-1] + 1:
                if hi > ends[-1]:
                    ends[-1] = hi
            else:
                starts.append(lo)
                ends.append(hi)
        self.starts, self.ends = _int_array(starts), _int_array(ends)

    @classmethod
    def of_pairs(cls, pairs):
        points, ranges = [], []
        for lo, hi in pairs:
            if lo == hi:
                points.append(lo)
            else:
                ranges.append((lo, hi))
        return cls(points, ranges)

    def __contains__(self, v):
        if self.points is not None:
            if v in self.points:
                return True
        else:
            points = self.sorted_points
            i = bisect.bisect_left(points, v)
            if i < len(points) and points[i] == v:
                return True
        if not self.starts:
            return False
        i = bisect.bisect_right(self.starts, v) - 1
        return i >= 0 and self.ends[i] >= v


def _bulk_ipv4(values):
    """The addresses of ``values`` as an array of ints when every one is a single IPv4 address (a large set
    as nft prints it, read as ``_fast_ip`` reads one), else None: the work is done by C loops."""
    if len(values) < _SMALL or array.array("I").itemsize != 4:
        return None
    try:
        packed = list(map(_PTON, itertools.repeat(_AF_INET), values))
    except (OSError, TypeError, ValueError):
        return None
    out = array.array("I")
    out.frombytes(b"".join(packed))
    if sys.byteorder == "little":
        out.byteswap()
    return out


def _address_sets(values):
    """VALUEs of an address key -> {family: _IntervalSet}.  Raises ValueError naming a bad value."""
    points = {"ipv4": [], "ipv6": []}
    ranges = {"ipv4": [], "ipv6": []}
    bulk = _bulk_ipv4(values)
    if bulk is not None:
        points["ipv4"] = bulk
    else:
        for v in values:
            fam, lo, hi = _parse_net(v)
            if lo == hi:
                points[fam].append(lo)
            else:
                ranges[fam].append((lo, hi))
    return {fam: _IntervalSet(points[fam], ranges[fam]) for fam in points}


def _int_array(values):
    """A compact sorted sequence of ints: an unsigned 64-bit array when they fit (IPv4, ports, marks), else the list."""
    if values and 0 <= values[0] and values[-1] < 2 ** 64:
        return array.array("Q", values)
    return values


class _FirstIndex:
    """For verdict maps: the position of the first ``(lo, hi, position)`` entry holding a value, or None.

    Entries are sorted by ``lo``; when they do not overlap (nft refuses overlapping map keys) a lookup
    is a bisection, else (a saved map with overlapping keys) the entries are tried in order."""
    __slots__ = ("starts", "ends", "positions", "ordered")

    def __init__(self, entries):
        entries = sorted(e for e in entries if e[0] <= e[1])
        self.ordered = None
        if any(entries[i][0] <= entries[i - 1][1] for i in range(1, len(entries))):
            self.ordered = sorted(entries, key=lambda e: e[2])
        self.starts = [e[0] for e in entries]
        self.ends = [e[1] for e in entries]
        self.positions = [e[2] for e in entries]

    def first(self, v):
        if self.ordered is not None:
            return next((pos for lo, hi, pos in self.ordered if lo <= v <= hi), None)
        i = bisect.bisect_right(self.starts, v) - 1
        return self.positions[i] if i >= 0 and self.ends[i] >= v else None


def _proto_name(v):
    return L4PROTO_NUMBERS.get(v, v) if isinstance(v, int) else L4PROTO_ALIASES.get(str(v).lower(), str(v).lower())


def _value_tester(key, values):
    """Compile VALUEs for one key into a function(pkt_value, pkt) -> bool.  Raises ValueError."""
    if key in _ADDR_KEYS:
        if len(values) == 1:  # most rules test one address or network
            fam, lo, hi = _parse_net(values[0])
            return lambda v, pkt: lo <= v <= hi and pkt["family"] == fam
        sets = _address_sets(values)
        return lambda v, pkt: v in sets[pkt["family"]]
    if key in _NUM_KEYS:
        if len(values) == 1:
            lo, hi = number_range(key, values[0])
            return lambda v, pkt: lo <= v <= hi
        iset = _IntervalSet.of_pairs([number_range(key, v) for v in values])
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
        s4, s6 = _IntervalSet.of_pairs(v4), _IntervalSet.of_pairs(v6)
        return lambda v, pkt: v in (s6 if pkt["family"] == "ipv6" else s4)
    if key == "proto":
        names = {_proto_name(v) for v in values}
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
    if key in _NAME_KEYS:
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


_NO_EXACT = object()


def _exact(key, value):
    """The hashable form of a VALUE that holds exactly one packet value (see ``_probe``), or ``_NO_EXACT``
    (a range, a prefix, a wildcard, a key tested otherwise).  Raises what ``_value_tester`` raises."""
    if key in _ADDR_KEYS:
        fam, lo, hi = _parse_net(value)
        return (fam, lo) if lo == hi else _NO_EXACT
    if key in _NUM_KEYS:
        lo, hi = number_range(key, value)
        return lo if lo == hi else _NO_EXACT
    if key == "proto":
        return _proto_name(value)
    if key in ("iif", "oif"):
        value = str(value)
        return _NO_EXACT if value.endswith("*") or value.endswith("+") else value
    if key in _NAME_KEYS:
        return str(value).lower()
    if key in ("dst_type", "src_type"):
        return str(value).upper()
    if key not in _VALUE_KEYS:
        raise ValueError("key %r" % key)
    return _NO_EXACT


def _probe(key, v, pkt):
    """A packet's value in the form ``_exact`` gives the values it equals."""
    return (pkt["family"], v) if key in _ADDR_KEYS else v


def _concat_elements(keys, values, by_key=True):
    """Elements of a concatenation -> ({exact tuple: position}, [(position, [tester per key]), ...]).

    Elements whose every part is a single value are looked up by hash; the others (ranges, prefixes,
    wildcards) are tested part by part.  Values are read key by key (``by_key``, a set) or element by
    element (a verdict map), the order the first bad one is reported in."""
    def part(k, value):
        exact = _exact(k, value)
        return exact if exact is not _NO_EXACT else _value_tester(k, [value])
    if by_key:
        columns = []
        for i, k in enumerate(keys):
            column = [v[i] for v in values]
            if k not in _VALUE_KEYS:
                raise ValueError("key %r" % k)
            columns.append([part(k, v) for v in column])
        rows = zip(*columns)
    else:
        rows = [[part(k, v[i]) for i, k in enumerate(keys)] for v in values]
    exact, other = {}, []
    for pos, parts in enumerate(rows):
        if any(callable(p) for p in parts):
            other.append((pos, [p if callable(p) else _exact_tester(k, p) for k, p in zip(keys, parts)]))
        else:
            exact.setdefault(tuple(parts), pos)
    return exact, other


def _exact_tester(key, exact):
    return lambda v, pkt: _probe(key, v, pkt) == exact


def _matches_parts(testers, vals, pkt):
    for t, v in zip(testers, vals):
        if not t(v, pkt):
            return False
    return True


def _concat_tester(keys, values):
    exact, other = _concat_elements(keys, values)

    def test(vals, pkt):
        if exact and tuple(_probe(k, v, pkt) for k, v in zip(keys, vals)) in exact:
            return True
        for dummy, testers in other:
            if _matches_parts(testers, vals, pkt):
                return True
        return False
    return test


def _vmap_finder(key, items):
    """``[[KEY VALUE, VERDICT], ...]`` of a verdict map -> (verdicts, function(packet value(s), pkt) returning
    the position of the first entry whose key holds the packet's, or None).  Raises ValueError (TypeError,
    ...) for an entry the model cannot read, entries read in order."""
    verdicts = []

    def keys_of():
        for value, verdict in items:
            verdicts.append(verdict)
            yield value
    values = keys_of()
    if isinstance(key, list):
        exact, other = _concat_elements(key, values, by_key=False)

        def find(vals, pkt):
            best = exact.get(tuple(_probe(k, v, pkt) for k, v in zip(key, vals))) if exact else None
            for pos, testers in other:
                if best is not None and pos > best:
                    break
                if _matches_parts(testers, vals, pkt):
                    return pos
            return best
        return verdicts, find
    exact, ranges, other = {}, {"ipv4": [], "ipv6": [], None: []}, []
    for pos, value in enumerate(values):
        if key in _ADDR_KEYS:
            fam, lo, hi = _parse_net(value)
            ranges[fam].append((lo, hi, pos))
        elif key in _NUM_KEYS:
            lo, hi = number_range(key, value)
            ranges[None].append((lo, hi, pos))
        else:
            one = _exact(key, value)
            if one is _NO_EXACT:
                other.append((pos, _value_tester(key, [value])))
            else:
                exact.setdefault(one, pos)
    index = {fam: _FirstIndex(entries) for fam, entries in ranges.items() if entries}

    def find(v, pkt):
        best = exact.get(v) if exact else None
        found = index.get(pkt["family"] if key in _ADDR_KEYS else None)
        if found is not None:
            pos = found.first(v)
            if pos is not None and (best is None or pos < best):
                best = pos
        for pos, tester in other:
            if best is not None and pos > best:
                break
            if tester(v, pkt):
                return pos
        return best
    return verdicts, find


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


def _compile_test(key, match, table):
    """-> function(packet value(s), pkt) -> bool for the values or the set of a match.  Raises ValueError, ..."""
    values = _compile_values(key, match, table)
    if isinstance(key, list):
        return _concat_tester(key, values)
    return _value_tester(key, values)


def _compile_match(match, table, cache=None):
    """-> function(pkt) returning True, False or a str (the reason it cannot be decided).

    ``cache`` (a dict) keeps each named set compiled once per key, however many rules test it."""
    key = match.get("key")
    if key == "unknown":
        reason = match.get("reason") or "unknown match"
        return lambda pkt: reason
    requires = _compile_requires(match.get("requires") or {})
    negate = bool(match.get("negate"))
    keys = tuple(key) if isinstance(key, list) else None
    ckey = (id(table), match["set"], keys or key) if cache is not None and "set" in match else None
    try:
        if ckey is None:
            test = _compile_test(key, match, table)
        else:
            if ckey not in cache:
                try:
                    cache[ckey] = _compile_test(key, match, table)
                except (ValueError, TypeError, IndexError, KeyError) as exc:
                    cache[ckey] = exc
            test = cache[ckey]
            if isinstance(test, Exception):
                raise test
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
        self.checks = [_compile_match(m, table, evaluator._sets) for m in rule.get("matches") or []]
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
        with building():
            self._compile(ruleset)

    def _compile(self, ruleset):
        ruleset = from_dict(ruleset)
        self.warnings = list(ruleset.get("warnings") or [])
        self.chains = {}
        self.base = []
        self._sets = {}  # named sets and maps compiled so far, while compiling
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
        self._sets = None
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
                if not (isinstance(key, str) or (isinstance(key, list) and all(isinstance(k, str) for k in key))):
                    found = _vmap_finder(key, entry["elements"])  # not cached: a key the model does not read
                else:
                    ckey = (id(table), "vmap", verdict["set"], tuple(key) if isinstance(key, list) else key)
                    if ckey not in self._sets:  # a named map is compiled once, however many rules use it
                        try:
                            self._sets[ckey] = _vmap_finder(key, entry["elements"])
                        except (ValueError, TypeError, IndexError, KeyError) as exc:
                            self._sets[ckey] = exc
                    found = self._sets[ckey]
                    if isinstance(found, Exception):
                        raise found
                verdicts, find = found
            else:
                verdicts, find = _vmap_finder(key, verdict["map"])
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            reason = "cannot model vmap on %s: %s" % (key, exc)
            return reason, requires
        return (key, verdicts, find), requires

    # ------------------------------------------------------------- walking

    def _vmap_lookup(self, rule, pkt):
        if isinstance(rule.vmap, str):
            raise _Indeterminate(rule.vmap, rule.origin)
        if rule.vmap_requires is not None and not rule.vmap_requires(pkt):
            return None
        key, verdicts, find = rule.vmap
        keys = key if isinstance(key, list) else [key]
        vals = []
        for k in keys:
            v = _get(pkt, k)
            if v is None:
                raise _Indeterminate("the packet has no %s (a verdict map tests it)" % k, rule.origin)
            vals.append(v)
        pos = find(vals if isinstance(key, list) else vals[0], pkt)
        return None if pos is None else verdicts[pos]

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
