# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probe's input: validate the tuning options (``DEFAULTS``) and expand
``{host, ports, protocol}`` targets into one probe description per address, port and
protocol, resolving names once each.  Bad values raise InputError naming them.
"""

from __future__ import annotations

import ipaddress
import math
import socket

from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import PROBE_PROTOCOLS as PROTOCOLS
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import expand_port_specs

ENGINES = ("auto", "raw", "connect")
APP_CHECKS = ("none", "banner", "http")

DEFAULTS = {
    "timeout": 1.0,          # seconds to wait for a reply to one attempt (upper bound)
    "retries": 1,            # re-sends of a silent probe
    "rate": 2000,            # packets per second, all targets together
    "parallelism": 256,      # probes in flight at once
    "max_probes": 10000,     # targets x ports per call
    "rate_limit_interval": 1.0,  # Linux net.ipv4.icmp_ratelimit default (1000 ms)
    "rate_limit_budget": 2.0,    # seconds spent re-probing possibly rate-limited ports
    "unreachable_wait": 3.5,     # seconds after its first send a silent probe still takes a late ICMP error
    "app_check": "none",
    "app_timeout": 2.0,
    "engine": "auto",
    "family": "auto",
}


def _number(value, name, minimum, maximum=None, integer=False):
    if isinstance(value, bool):
        raise InputError("invalid %s %r: not a number" % (name, value))
    try:
        num = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise InputError("invalid %s %r: not a number" % (name, value))
    if integer and isinstance(value, float) and value != num:
        raise InputError("invalid %s %r: not a whole number" % (name, value))
    if not math.isfinite(num):  # NaN / infinity: no bound check would catch them
        raise InputError("invalid %s %r: not a finite number" % (name, value))
    if num < minimum or (maximum is not None and num > maximum):
        bounds = "at least %s" % minimum if maximum is None else "between %s and %s" % (minimum, maximum)
        raise InputError("invalid %s %r: must be %s" % (name, value, bounds))
    return num


def normalize_options(options=None):
    """Fill defaults and validate the tuning options; returns a new dict."""
    opts = dict(DEFAULTS)
    for key, value in (options or {}).items():
        if key not in DEFAULTS:
            raise InputError("unknown probe option %r (expected one of %s)" % (key, ", ".join(sorted(DEFAULTS))))
        if value is not None:
            opts[key] = value
    opts["timeout"] = _number(opts["timeout"], "timeout", 0.01, 300)
    opts["retries"] = _number(opts["retries"], "retries", 0, 10, integer=True)
    opts["rate"] = _number(opts["rate"], "rate", 1, 100000)
    opts["parallelism"] = _number(opts["parallelism"], "parallelism", 1, 4096, integer=True)
    opts["max_probes"] = _number(opts["max_probes"], "max_probes", 1, 1000000, integer=True)
    opts["rate_limit_interval"] = _number(opts["rate_limit_interval"], "rate_limit_interval", 0.01, 60)
    opts["rate_limit_budget"] = _number(opts["rate_limit_budget"], "rate_limit_budget", 0, 3600)
    opts["unreachable_wait"] = _number(opts["unreachable_wait"], "unreachable_wait", 0, 60)
    opts["app_timeout"] = _number(opts["app_timeout"], "app_timeout", 0.01, 300)
    for key, allowed in (("engine", ENGINES), ("app_check", APP_CHECKS), ("family", ("auto", "ipv4", "ipv6"))):
        if opts[key] not in allowed:
            raise InputError("invalid %s %r (expected one of %s)" % (key, opts[key], ", ".join(allowed)))
    return opts


def _check_literal(host):
    """Refuse what can only be a mistyped address, before it reaches DNS: a name's last label
    is never all digits (RFC 3696), so ``10.0.0.999`` or ``10.1`` is a bad IPv4 address, not a
    name; a name never holds ``:``, so ``fe80::zz`` is a bad IPv6 address."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0] if ":" in host else host)
        return
    except ValueError:
        pass
    if ":" in host:
        raise InputError("invalid target host %r: not an IPv6 address (and a name cannot hold ':')" % (host,))
    last = host.rstrip(".").rsplit(".", 1)[-1]
    if last.isascii() and last.isdigit():
        raise InputError("invalid target host %r: not an IPv4 address (four numbers 0-255, e.g. 10.0.0.9), "
                         "and a name cannot end in a number" % (host,))


def resolve(host, family="auto"):
    """Resolve an address or name to ``(address, family 4|6)``; InputError naming it."""
    if not isinstance(host, str) or not host.strip():
        raise InputError("invalid target host %r: expected an address or a name" % (host,))
    host = host.strip()
    _check_literal(host)
    fam = {"auto": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}[family]
    try:
        infos = socket.getaddrinfo(host, None, fam, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError("cannot resolve target host %r: %s" % (host, exc))
    # Prefer IPv4 when both exist and the user did not choose (the lab and most
    # firewall rules are IPv4); deterministic either way.
    infos.sort(key=lambda i: 0 if i[0] == socket.AF_INET else 1)
    af, _t, _p, _c, sockaddr = infos[0]
    return sockaddr[0], (4 if af == socket.AF_INET else 6)


def expand_targets(targets, max_probes=DEFAULTS["max_probes"], family="auto"):
    """Validate ``targets`` (list of ``{host, ports, protocol}``) and expand them into
    probe descriptions ``{target, address, family, port, protocol}`` (``port`` None for
    icmp).  Names are resolved once each; bad values raise InputError naming them."""
    if not isinstance(targets, (list, tuple)) or not targets:
        raise InputError("targets must be a non-empty list, got %r" % (targets,))
    out = []
    seen = set()
    resolved = {}
    for index, target in enumerate(targets):
        if isinstance(target, str):
            target = {"host": target}
        if not isinstance(target, dict):
            raise InputError("invalid target #%d %r: expected a dict with host, ports, protocol" % (index + 1, target))
        unknown = set(target) - {"host", "ports", "protocol"}
        if unknown:
            raise InputError("invalid target #%d: unknown key(s) %s" % (index + 1, ", ".join(sorted(unknown))))
        protocol = str(target.get("protocol") or "tcp").strip().lower()
        if protocol not in PROTOCOLS:
            raise InputError("invalid protocol %r for target %r (expected one of %s)"
                             % (target.get("protocol"), target.get("host"), ", ".join(PROTOCOLS)))
        ports = target.get("ports")
        if ports is None:
            ports = []
        elif not isinstance(ports, (list, tuple)):
            ports = [ports]
        host = target.get("host")
        if protocol == "icmp":
            if ports:
                raise InputError("target %r: protocol icmp takes no ports (got %r)" % (host, list(ports)))
            pairs = [(None, "icmp")]
        else:
            if not ports:
                raise InputError("target %r: protocol %s needs ports" % (host, protocol))
            pairs = expand_port_specs([str(p) for p in ports], default_protocol=protocol, limit=max_probes)
            for _port, proto in pairs:
                if proto not in ("tcp", "udp"):
                    raise InputError("target %r: cannot probe protocol %r (expected tcp or udp in port specs)"
                                     % (host, proto))
        key_host = (host.strip() if isinstance(host, str) else host)
        if key_host not in resolved:
            resolved[key_host] = resolve(host, family)
        address, fam = resolved[key_host]
        for port, proto in pairs:
            key = (address, port, proto)
            if key in seen:
                continue
            seen.add(key)
            out.append({"target": key_host, "address": address, "family": fam, "port": port, "protocol": proto})
            if len(out) > max_probes:
                raise InputError("targets expand to more than max_probes=%d probes; raise max_probes or probe fewer ports"
                                 % max_probes)
    return out
