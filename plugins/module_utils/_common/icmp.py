# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ICMP tables kept as data: type/code names, what ``connect()`` reports for them,
and what each firewall ``reject`` kind puts on the wire.

Used by the probe (naming what came back), pcap_info, and the rule evaluator
(predicting what a client sees when a rule rejects).
"""

from __future__ import annotations

# ICMPv4 (RFC 792, RFC 1122, RFC 1812)
ICMP4_TYPES = {
    0: "echo-reply",
    3: "destination-unreachable",
    4: "source-quench",
    5: "redirect",
    8: "echo-request",
    11: "time-exceeded",
    12: "parameter-problem",
}

ICMP4_UNREACH = {
    0: "net-unreachable",
    1: "host-unreachable",
    2: "protocol-unreachable",
    3: "port-unreachable",
    4: "fragmentation-needed",
    5: "source-route-failed",
    6: "net-unknown",
    7: "host-unknown",
    8: "source-host-isolated",
    9: "net-prohibited",
    10: "host-prohibited",
    11: "net-tos-unreachable",
    12: "host-tos-unreachable",
    13: "admin-prohibited",
    14: "host-precedence-violation",
    15: "precedence-cutoff",
}

# ICMPv6 (RFC 4443)
ICMP6_TYPES = {
    1: "destination-unreachable",
    2: "packet-too-big",
    3: "time-exceeded",
    4: "parameter-problem",
    128: "echo-request",
    129: "echo-reply",
}

ICMP6_UNREACH = {
    0: "no-route",
    1: "admin-prohibited",
    2: "beyond-scope",
    3: "address-unreachable",
    4: "port-unreachable",
    5: "policy-fail",
    6: "reject-route",
}

# What Linux connect()/recv() report for an ICMP error (net/ipv4/icmp.c icmp_err_convert).
ICMP4_ERRNO = {
    0: "ENETUNREACH", 1: "EHOSTUNREACH", 2: "ENOPROTOOPT", 3: "ECONNREFUSED",
    4: "EMSGSIZE", 5: "EOPNOTSUPP", 6: "ENETUNREACH", 7: "EHOSTDOWN", 8: "ENONET",
    9: "ENETUNREACH", 10: "EHOSTUNREACH", 11: "ENETUNREACH", 12: "EHOSTUNREACH",
    13: "EHOSTUNREACH", 14: "EHOSTUNREACH", 15: "EHOSTUNREACH",
}


def icmp_name(family, icmp_type, code=None):
    """Human name of an ICMP type (and code), e.g. ``destination-unreachable/admin-prohibited``."""
    if family in (6, "ipv6", "inet6"):
        tname = ICMP6_TYPES.get(icmp_type, "type-%s" % icmp_type)
        codes = ICMP6_UNREACH if icmp_type == 1 else {}
    else:
        tname = ICMP4_TYPES.get(icmp_type, "type-%s" % icmp_type)
        codes = ICMP4_UNREACH if icmp_type == 3 else {}
    if code is None:
        return tname
    return "%s/%s" % (tname, codes.get(code, "code-%s" % code))


def is_unreachable(family, icmp_type):
    if family in (6, "ipv6", "inet6"):
        return icmp_type == 1
    return icmp_type == 3


# What a reject puts on the wire, per address family.  A "reply" is a dict
# {kind: 'rst'} or {kind: 'icmp', type, code}.  Keys are the spellings the
# backends use: nftables JSON `reject` expression ({"type": ..., "expr": ...}),
# iptables `--reject-with`.
RST = {"kind": "rst"}


def _icmp4(code):
    return {"kind": "icmp", "family": "ipv4", "type": 3, "code": code, "name": icmp_name(4, 3, code)}


def _icmp6(code):
    return {"kind": "icmp", "family": "ipv6", "type": 1, "code": code, "name": icmp_name(6, 1, code)}


# nftables `reject with icmp type X` (ipv4) names -> code
NFT_ICMP4_REJECT = {
    "net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2, "port-unreachable": 3,
    "net-prohibited": 9, "host-prohibited": 10, "admin-prohibited": 13,
}
# nftables `reject with icmpv6 type X`
NFT_ICMP6_REJECT = {
    "no-route": 0, "admin-prohibited": 1, "addr-unreachable": 3, "port-unreachable": 4,
    "policy-fail": 5, "reject-route": 6,
}
# nftables `reject with icmpx type X` (inet family: the kernel picks the v4/v6 code)
NFT_ICMPX_REJECT = {
    "port-unreachable": (3, 4), "admin-prohibited": (13, 1), "no-route": (0, 0), "host-unreachable": (1, 3),
}

# iptables / ip6tables --reject-with
IPT_REJECT = {
    "icmp-net-unreachable": _icmp4(0), "icmp-host-unreachable": _icmp4(1),
    "icmp-proto-unreachable": _icmp4(2), "icmp-port-unreachable": _icmp4(3),
    "icmp-net-prohibited": _icmp4(9), "icmp-host-prohibited": _icmp4(10),
    "icmp-admin-prohibited": _icmp4(13),
    "icmp6-no-route": _icmp6(0), "no-route": _icmp6(0),
    "icmp6-adm-prohibited": _icmp6(1), "adm-prohibited": _icmp6(1),
    "icmp6-addr-unreachable": _icmp6(3), "addr-unreach": _icmp6(3),
    "icmp6-port-unreachable": _icmp6(4), "port-unreach": _icmp6(4),
    "icmp6-policy-fail": _icmp6(5), "icmp6-reject-route": _icmp6(6),
    "tcp-reset": RST,
}


def nft_reject_reply(family, reject_type=None, expr=None):
    """Reply sent by an nftables ``reject`` for a packet of ``family`` ('ipv4'/'ipv6').

    ``reject_type`` is the JSON ``type`` ('icmp', 'icmpv6', 'icmpx', 'tcp reset') and
    ``expr`` the code name; with neither, nftables sends port-unreachable.
    """
    if reject_type in ("tcp reset", "tcp-reset"):
        return dict(RST)
    v6 = family in ("ipv6", "ip6", 6)
    if reject_type in (None, "icmpx"):
        codes = NFT_ICMPX_REJECT.get(expr or "port-unreachable")
        if codes is None:
            return None
        return _icmp6(codes[1]) if v6 else _icmp4(codes[0])
    if reject_type == "icmp":
        code = NFT_ICMP4_REJECT.get(expr or "port-unreachable")
        return None if code is None else _icmp4(code)
    if reject_type == "icmpv6":
        code = NFT_ICMP6_REJECT.get(expr or "port-unreachable")
        return None if code is None else _icmp6(code)
    return None


def ipt_reject_reply(family, reject_with=None):
    """Reply sent by iptables ``-j REJECT [--reject-with X]``; default port-unreachable."""
    if reject_with is None:
        return _icmp6(4) if family in ("ipv6", 6) else _icmp4(3)
    return IPT_REJECT.get(reject_with)


# --------------------------------------------------------------------------- nmap's reasons
# nmap's reason names for ICMP destination-unreachable codes (IPv4 / IPv6).
ICMP4_REASONS = {
    0: "net-unreach", 1: "host-unreach", 2: "proto-unreach", 3: "port-unreach",
    4: "frag-needed", 5: "source-route-failed", 6: "net-unknown", 7: "host-unknown",
    8: "host-isolated", 9: "net-prohibited", 10: "host-prohibited", 11: "net-tos-unreach",
    12: "host-tos-unreach", 13: "admin-prohibited", 14: "host-precedence-violation",
    15: "precedence-cutoff",
}
ICMP6_REASONS = {
    0: "no-route", 1: "admin-prohibited", 2: "beyond-scope", 3: "addr-unreach",
    4: "port-unreach", 5: "policy-fail", 6: "reject-route",
}
# Unreachable codes saying the *host or network* cannot be reached (our state
# ``unreachable``; nmap folds these into ``filtered`` for TCP).
ICMP4_HOST_GONE = frozenset([0, 1, 5, 6, 7, 8, 11, 12])
ICMP6_HOST_GONE = frozenset([0, 2, 3])
ICMP4_PORT_UNREACH = 3
ICMP6_PORT_UNREACH = 4


def icmp_class(family, icmp_type, icmp_code):
    """Sort an ICMP error into port-unreach / host-gone / prohibited / time-exceeded."""
    v6 = family == 6
    if (v6 and icmp_type == 3) or (not v6 and icmp_type == 11):
        return "time-exceeded", "time-exceeded"
    if is_unreachable(family, icmp_type):
        reasons = ICMP6_REASONS if v6 else ICMP4_REASONS
        reason = reasons.get(icmp_code, "unreach-code-%s" % icmp_code)
        if icmp_code == (ICMP6_PORT_UNREACH if v6 else ICMP4_PORT_UNREACH):
            return "port-unreach", reason
        if icmp_code in (ICMP6_HOST_GONE if v6 else ICMP4_HOST_GONE):
            return "host-gone", reason
        return "prohibited", reason
    return "prohibited", "icmp-type-%s" % icmp_type
