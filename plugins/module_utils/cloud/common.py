# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Building blocks shared by the cloud readers: one way to express a cloud rule in the rule model.

A cloud layer is one table of the common model (docs/rule-model.md) whose chains sit on the
hooks the evaluator walks, so ``rules.evaluate.Evaluator`` decides cloud packets exactly as it
decides host packets:

- a subnet's network ACL: chain ``inbound`` on ``prerouting`` and ``outbound`` on ``postrouting``
  (the packet crosses the subnet boundary before it reaches the interface, and after it leaves);
  rules in rule-number order, first match wins, ``policy: drop`` (the ``*`` rule);
- an interface's security groups: chain ``ingress`` on ``input`` and ``egress`` on ``output``;
  every group's rules in one chain (any matching allow wins), a first rule that accepts the
  return traffic of allowed connections (they are stateful), ``policy: drop`` (default deny).
"""

from __future__ import annotations

import ipaddress

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, NetdiagError, ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import is_digits
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.model import (
    L4PROTO_ALIASES, L4PROTO_NUMBERS, new_ruleset, number_range,
)

# Layers, in the order a packet meets them on the way in.
LAYER_NETWORK_ACL = "network_acl"
LAYER_SECURITY_GROUP = "security_group"

HOOK_ORDER = {"prerouting": 0, "input": 1, "output": 2, "postrouting": 3}

# Ports a client picks for its side of a connection when the packet does not say
# (Linux's default net.ipv4.ip_local_port_range).
DEFAULT_EPHEMERAL_PORTS = (32768, 60999)


def guard_response(provider, call, *args, **kwargs):
    """``call(*args, **kwargs)``, with a provider's response of the wrong shape (a missing key, a
    list where an object belongs, an address that is not one) turned into a ParseError naming
    the provider and what was missing, instead of a raw KeyError or TypeError."""
    try:
        return call(*args, **kwargs)
    except NetdiagError:
        raise
    except KeyError as exc:
        raise ParseError("a %s response has no %s field" % (provider, exc), source=provider)
    except (TypeError, AttributeError, IndexError, ValueError) as exc:
        raise ParseError("a %s response has an unexpected shape: %s: %s" % (provider, type(exc).__name__, exc),
                         source=provider)


def protocol_name(value):
    """A provider's protocol (``tcp``, ``6``, ``TCP``, ``-1``, ``all``) -> a model name or None for all.

    Raises InputError naming an unknown value.
    """
    text = str(value).strip().lower()
    if text in ("-1", "all", ""):
        return None
    if is_digits(text):
        number = int(text)
        if number in L4PROTO_NUMBERS:
            return L4PROTO_NUMBERS[number]
        raise InputError("unknown protocol number %r" % (value,))
    text = L4PROTO_ALIASES.get(text, text)
    if text in L4PROTO_NUMBERS.values():
        return text
    raise InputError("unknown protocol %r" % (value,))


def cidr(value):
    """Normalise a CIDR or address (raises InputError naming it)."""
    try:
        return str(ipaddress.ip_network(str(value).strip(), strict=False))
    except ValueError:
        raise InputError("invalid CIDR %r" % (value,))


def host_cidr(address):
    ip = ipaddress.ip_address(str(address))
    return "%s/%d" % (ip, 32 if ip.version == 4 else 128)


def match(key, values, negate=False):
    return {"key": key, "negate": negate, "values": list(values)}


def unknown(reason):
    return {"key": "unknown", "reason": reason}


def proto_matches(proto, ports=None, port_key="dport", icmp=None):
    """Matches for a protocol and its port range ``(lo, hi)`` or ICMP ``(type, code)`` (None = any)."""
    out = []
    if proto is not None:
        out.append(match("proto", [proto]))
    if proto in ("tcp", "udp", "sctp", "dccp", "udplite") and ports is not None:
        lo, hi = ports
        try:
            number_range(port_key, [lo, hi])
        except ValueError as exc:  # a provider's rule with ports no packet has: it decides nothing we can tell
            out.append(unknown("invalid port range %s-%s in the rule: %s" % (lo, hi, exc)))
            return out
        if not (lo <= 1 and hi >= 65535):
            m = match(port_key, [lo if lo == hi else [lo, hi]])
            m["requires"] = {"proto": [proto]}
            out.append(m)
    if proto in ("icmp", "ipv6-icmp") and icmp is not None:
        icmp_type, icmp_code = icmp
        if icmp_type is not None and icmp_type >= 0:
            out.append(match("icmp_type", [icmp_type]))
            if icmp_code is not None and icmp_code >= 0:
                out.append(match("icmp_code", [icmp_code]))
    return out


def rule(matches, verdict, origin):
    return {"matches": matches, "statements": [], "verdict": {"kind": verdict}, "origin": origin}


def stateful_rule(backend, table, chain, what):
    """The implicit first rule of a stateful layer: replies of allowed connections pass."""
    return rule([match("ct_state", ["established", "related"])], "accept", {
        "backend": backend, "family": "inet", "table": table, "chain": chain, "handle": "stateful",
        "text": "%s are stateful: return traffic of an allowed connection is allowed" % what,
    })


def chain(name, hook, rules, policy="drop"):
    return {"name": name, "type": "filter", "hook": hook, "priority": 0, "policy": policy, "rules": rules}


def table(backend, name, layer, label, chains, **extra):
    out = {"backend": backend, "family": "inet", "name": name, "sets": {}, "chains": chains,
           "layer": layer, "label": label}
    out.update(extra)
    return out


def ruleset(tables, warnings=()):
    rs = new_ruleset()
    rs["tables"] = list(tables)
    rs["warnings"] = list(warnings)
    return rs


def port_text(proto, ports):
    if proto is None:
        return "all traffic"
    if ports is None or proto not in ("tcp", "udp", "sctp", "dccp", "udplite"):
        return proto
    lo, hi = ports
    if lo <= 1 and hi >= 65535:
        return "%s all ports" % proto
    return "%s %s" % (proto, lo if lo == hi else "%d-%d" % (lo, hi))
