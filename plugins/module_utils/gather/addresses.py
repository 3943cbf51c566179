# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's interface addresses, both families, so the explainer knows which addresses are the
host's and which interface a packet from a peer arrives on - without a run of ``setup``.

Read with iproute2's JSON output (``ip -j address show``); without ``ip``, IPv6 addresses come
from ``/proc/net/if_inet6`` and each interface's primary IPv4 address from the
``SIOCGIFADDR``/``SIOCGIFNETMASK`` ioctls (secondary IPv4 addresses are then not seen).  Every
address is ``{interface, family, address, prefix, scope, secondary}``; ``scope`` is ``global``,
``site``, ``link`` or ``host``; ``secondary`` is true for an IPv4 address that is not its
subnet's first on the interface (what ``ip`` prints as ``secondary``).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import struct

from ansible_collections.netdiag.reachability.plugins.module_utils._common.commands import command_output as _run
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import ParseError

FAMILIES = {"inet": "ipv4", "inet6": "ipv6"}
SCOPES_V6 = {0x00: "global", 0x10: "host", 0x20: "link", 0x40: "site"}
SIOCGIFADDR = 0x8915
SIOCGIFNETMASK = 0x891B


def parse_ip_json(text):
    """Addresses from ``ip -j address show``."""
    try:
        data = json.loads(text or "[]")
    except ValueError as exc:
        raise ParseError("ip -j address: not JSON (%s)" % exc)
    if not isinstance(data, list):
        raise ParseError("ip -j address: expected a list, got %s" % type(data).__name__)
    out = []
    for link in data:
        if not isinstance(link, dict) or not isinstance(link.get("ifname"), str):
            raise ParseError("ip -j address: an interface without ifname: %r" % (link,))
        for a in link.get("addr_info") or []:
            family = FAMILIES.get(a.get("family")) if isinstance(a, dict) else None
            if family is None or not a.get("local"):
                continue
            try:
                ip = ipaddress.ip_address(a["local"])
                prefix = int(a.get("prefixlen", ip.max_prefixlen))
            except (TypeError, ValueError):
                raise ParseError("ip -j address: bad address %r on %s" % (a.get("local"), link["ifname"]))
            out.append({"interface": link["ifname"], "family": family, "address": str(ip), "prefix": prefix,
                        "scope": str(a.get("scope") or "global"), "secondary": bool(a.get("secondary"))})
    return out


def parse_if_inet6(text):
    """IPv6 addresses from ``/proc/net/if_inet6`` (address, index, prefix, scope, flags, name; hex)."""
    out = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) < 6:
            continue
        try:
            ip = ipaddress.IPv6Address(bytes.fromhex(parts[0]))
            prefix, scope = int(parts[2], 16), int(parts[3], 16)
        except ValueError:
            raise ParseError("/proc/net/if_inet6: bad line %r" % line)
        out.append({"interface": parts[5], "family": "ipv6", "address": str(ip), "prefix": prefix,
                    "scope": SCOPES_V6.get(scope & 0xF0, "global"), "secondary": False})
    return out


def _ioctl_v4(names):
    """Each interface's primary IPv4 address and netmask through ioctls (no ``ip`` command)."""
    import fcntl
    out = []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for name in names:
            req = struct.pack("256s", name.encode("utf-8")[:15])
            try:
                addr = socket.inet_ntoa(fcntl.ioctl(sock.fileno(), SIOCGIFADDR, req)[20:24])
                mask = socket.inet_ntoa(fcntl.ioctl(sock.fileno(), SIOCGIFNETMASK, req)[20:24])
            except OSError:
                continue  # no IPv4 address on it
            prefix = ipaddress.ip_network("0.0.0.0/%s" % mask).prefixlen
            scope = "host" if ipaddress.ip_address(addr).is_loopback else "global"
            out.append({"interface": name, "family": "ipv4", "address": addr, "prefix": prefix, "scope": scope,
                        "secondary": False})
    finally:
        sock.close()
    return out


def read_addresses(run=_run, if_inet6="/proc/net/if_inet6", ioctl_v4=_ioctl_v4):
    """``{addresses: [...], read_with, warnings: [...]}`` for every interface, both families."""
    text = run(["ip", "-j", "address", "show"])
    if text is not None:
        return {"addresses": parse_ip_json(text), "read_with": "ip -j", "warnings": []}
    addresses = ioctl_v4([name for dummy, name in socket.if_nameindex()])
    try:
        with open(if_inet6) as fh:
            addresses += parse_if_inet6(fh.read())
    except OSError:
        pass  # no IPv6 on this host
    return {"addresses": addresses, "read_with": "ioctl + /proc/net/if_inet6",
            "warnings": ["no ip command: IPv4 addresses read with ioctls (secondary IPv4 addresses not seen)"]}


def add_to(result, read=read_addresses):
    """Add ``interface_addresses`` (and their warnings) to a listeners result."""
    addrs = read()
    result["interface_addresses"] = addrs["addresses"]
    result["warnings"] = list(result.get("warnings") or []) + addrs["warnings"]
    return result
