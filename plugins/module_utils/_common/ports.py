# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Port and protocol specifications: ``80/tcp``, ``8000-8010/tcp``, ``53/udp``.

One parser for every plugin, so a port of 70000 or ``abc/tcp`` gets the same clear
error everywhere.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError

PROTOCOLS = ("tcp", "udp", "sctp", "dccp")


def is_digits(text):
    """True when ``text`` is a non-empty string of the ASCII digits 0-9 only.

    ``str.isdigit()`` is also true for superscripts and other scripts' digits (``8\u00b2``,
    ``\u0663``), which ``int()`` then rejects or reads as another number.
    """
    return isinstance(text, str) and text.isascii() and text.isdigit()


def parse_number(value, what, low, high):
    """An int in ``low..high`` from an int or a string of ASCII digits; InputError naming the value."""
    if isinstance(value, bool):
        raise InputError("invalid %s %r: not a number" % (what, value))
    if isinstance(value, int):
        number = value
    else:
        text = (value if isinstance(value, str) else str(value)).strip()
        if not is_digits(text):
            raise InputError("invalid %s %r: not a number" % (what, value))
        number = int(text)
    if not low <= number <= high:
        raise InputError("invalid %s %r: must be between %d and %d" % (what, value, low, high))
    return number


def parse_port(value, what="port"):
    """Return an int in 1..65535 or raise InputError naming the value."""
    return parse_number(value, what, 1, 65535)


def parse_port_range(value):
    """``80`` or ``8000-8010`` -> (first, last)."""
    text = str(value).strip()
    if "-" in text:
        first, dummy, last = text.partition("-")
        lo, hi = parse_port(first), parse_port(last)
        if lo > hi:
            raise InputError("invalid port range %r: %d is greater than %d" % (value, lo, hi))
        return lo, hi
    port = parse_port(text)
    return port, port


def parse_port_spec(spec, default_protocol=None, protocols=PROTOCOLS):
    """Parse ``PORT[-PORT]/PROTO`` into a dict ``{first, last, protocol}``.

    ``default_protocol`` is used when the spec has no ``/PROTO`` part; without one the
    protocol is required.
    """
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = str(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise InputError("invalid port spec %r: expected PORT[-PORT]/PROTOCOL" % (spec,))
    text = spec.strip().lower()
    if "/" in text:
        ports, dummy, proto = text.partition("/")
    else:
        ports, proto = text, default_protocol
        if proto is None:
            raise InputError("invalid port spec %r: no protocol (write e.g. %s/tcp)" % (spec, text))
    if proto not in protocols:
        raise InputError("invalid port spec %r: unknown protocol %r (expected one of %s)"
                         % (spec, proto, ", ".join(protocols)))
    try:
        first, last = parse_port_range(ports)
    except InputError as exc:
        raise InputError("invalid port spec %r: %s" % (spec, exc))
    return {"first": first, "last": last, "protocol": proto}


def format_port_spec(first, last, protocol):
    if first == last:
        return "%d/%s" % (first, protocol)
    return "%d-%d/%s" % (first, last, protocol)


def expand_port_specs(specs, default_protocol=None, limit=None):
    """Expand a list of specs into ``[(port, protocol), ...]``, de-duplicated, in order.

    ``limit`` bounds the expansion so a typo like ``1-65535`` cannot explode silently.
    """
    seen = set()
    out = []
    for spec in specs:
        parsed = parse_port_spec(spec, default_protocol=default_protocol)
        for port in range(parsed["first"], parsed["last"] + 1):
            key = (port, parsed["protocol"])
            if key in seen:
                continue
            seen.add(key)
            out.append(key)
            if limit is not None and len(out) > limit:
                raise InputError("port specs %r expand to more than %d ports" % (list(specs), limit))
    return out


def change_request(ports, state="present", source=None, protocols=PROTOCOLS, allow_any=False):
    """The validated core of a port-opening request (the *_port and raw_rule modules):
    ``(specs, source)`` with ``specs`` the de-duplicated ``(first, last, protocol)`` ranges and
    ``source`` the normalised address or network (``None`` for anywhere; ``any`` or an empty
    string mean anywhere when ``allow_any``)."""
    if state not in ("present", "absent"):
        raise InputError("invalid state %r: expected present or absent" % (state,))
    if not isinstance(ports, list) or not ports:
        raise InputError("invalid ports %r: give a non-empty list such as [\"80/tcp\"]" % (ports,))
    specs = []
    for spec in ports:
        p = parse_port_spec(spec, default_protocol="tcp", protocols=protocols)
        item = (p["first"], p["last"], p["protocol"])
        if item not in specs:
            specs.append(item)
    if source is None or allow_any and str(source).strip() in ("", "any"):
        return specs, None
    try:
        net = ipaddress.ip_network(str(source).strip(), strict=False)
    except ValueError:
        raise InputError("invalid source %r (expected an IP address or network%s)"
                         % (source, ", or any" if allow_any else ""))
    return specs, str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
