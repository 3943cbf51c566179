# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read firewalld's zones and services: the running daemon over D-Bus, or the files offline.

The read side of the firewalld library, shared by firewall_info (``zones.py``) and the
changer (``fix/firewalld_port.py``, whose backends extend these readers with ``apply()``).
:func:`connect` gives the running daemon through the firewalld D-Bus API
(``firewall.client``) when it answers, else the permanent configuration read with
firewalld's own zone reader (``firewall.core.io.zone``) under a configuration root
(``/etc/firewalld`` by default) and the system root (``/usr/lib/firewalld``).
:func:`normalize_settings` turns firewalld's settings dict into this collection's view of a
zone and :func:`resolve_zone` tells which zone handles traffic, as firewalld chooses it.
"""

from __future__ import annotations

import ipaddress
import os
import traceback

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    BackendUnavailable, InputError, MissingDependency, ParseError)
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import is_digits

PACKAGE = "python3-firewall"
ETC_ROOT = "/etc/firewalld"
USR_ROOT = "/usr/lib/firewalld"
DEFAULT_TARGET = "default"


def _import_client():
    """Return ``firewall.client`` or raise MissingDependency naming the package."""
    try:
        import dbus  # noqa: F401  pylint: disable=unused-import
        from firewall import client
    except ImportError:
        raise MissingDependency("the firewalld Python bindings (firewall.client, dbus)", package=PACKAGE,
                                reason=traceback.format_exc().strip().splitlines()[-1])
    return client


def _import_zone_io():
    try:
        from firewall.core.io import zone as zone_io
    except ImportError:
        raise MissingDependency("the firewalld Python bindings (firewall.core.io.zone)", package=PACKAGE,
                                reason=traceback.format_exc().strip().splitlines()[-1])
    return zone_io


# --------------------------------------------------------------------------- settings

def conf_value(config_root, key):
    """The value of ``key`` in ``<config_root>/firewalld.conf`` (the last one wins), or None.

    The file is read as UTF-8 with replacement characters, so a stray byte in a comment does
    not stop the read; a value that is not UTF-8 itself is a ParseError naming the line."""
    path = os.path.join(config_root, "firewalld.conf")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ParseError("cannot read firewalld.conf: %s" % exc, source=path)
    found = None
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        k, sep, value = line.strip().partition("=")
        if sep and k.strip() == key:
            value = value.strip().strip('"')
            if "\ufffd" in value:
                raise ParseError("%s is not UTF-8 text: %r" % (key, value), source=path, line=number)
            found = value
    return found


def parse_range(text):
    """``"9000"`` or ``"9000-9010"`` (as firewalld stores them) -> (first, last)."""
    first, dummy, last = str(text).strip().partition("-")
    last = last if dummy else first
    if not (is_digits(first) and is_digits(last)):
        raise ParseError("unexpected port %r in the zone settings: not a number" % (text,))
    lo, hi = int(first), int(last)
    if not (1 <= lo <= 65535 and 1 <= hi <= 65535):
        raise ParseError("unexpected port %r in the zone settings: ports are 1-65535 (firewalld refuses it)"
                         % (text,))
    return (lo, hi) if lo <= hi else (hi, lo)   # firewalld itself reads 9010-9000 as 9000-9010


def sort_ports(ports):
    def key(text):
        rng, dummy, proto = text.rpartition("/")
        if not dummy:
            raise ParseError("unexpected port %r in the zone settings: expected PORT[-PORT]/PROTOCOL" % (text,))
        lo, hi = parse_range(rng)
        return (lo, hi, proto)
    return sorted(set(ports), key=key)


def plain(value):
    """dbus types -> plain Python."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    return value


def normalize_settings(raw):
    """firewalld's settings dict (``getSettingsDict()``/``export_config_dict()``) -> our view."""
    raw = plain(raw or {})
    target = raw.get("target") or DEFAULT_TARGET
    if target in ("{chain}_{zone}", "%%REJECT%%"):
        target = DEFAULT_TARGET
    return {
        "target": target,
        "services": sorted(raw.get("services") or []),
        "ports": sort_ports(["%s/%s" % (p[0], p[1]) for p in raw.get("ports") or []]),
        "protocols": sorted(raw.get("protocols") or []),
        "source_ports": sort_ports(["%s/%s" % (p[0], p[1]) for p in raw.get("source_ports") or []]),
        "forward_ports": sorted("port=%s:proto=%s:toport=%s:toaddr=%s" % tuple(p)
                                for p in raw.get("forward_ports") or []),
        "masquerade": bool(raw.get("masquerade", False)),
        "forward": bool(raw.get("forward", False)),
        "icmp_blocks": sorted(raw.get("icmp_blocks") or []),
        "icmp_block_inversion": bool(raw.get("icmp_block_inversion", False)),
        "rich_rules": list(raw.get("rules_str") or []),
        "interfaces": sorted(raw.get("interfaces") or []),
        "sources": sorted(raw.get("sources") or []),
    }


def resolve_zone(bindings, default_zone, zone=None, interface=None, source=None):
    """Which zone handles the traffic: ``(zone, how, reason)``.

    ``bindings`` is ``{zone: {"interfaces": [...], "sources": [...]}}``.  firewalld sends a
    packet to the zone its source address is bound to first, else to the zone of the
    interface it came in on, else to the default zone.
    """
    if zone:
        return zone, "given", "zone %s was given" % zone
    if source:
        addr = ipaddress.ip_network(source, strict=False)
        best = None
        for name in sorted(bindings):
            for src in bindings[name].get("sources") or []:
                if src.startswith("ipset:"):
                    continue
                try:
                    net = ipaddress.ip_network(src, strict=False)
                except ValueError:
                    continue
                if net.version == addr.version and addr.subnet_of(net):
                    if best is None or net.prefixlen > best[1].prefixlen:
                        best = (name, net, src)
        if best:
            return best[0], "source", "source %s is bound to zone %s (binding %s)" % (source, best[0], best[2])
    if interface:
        for name in sorted(bindings):
            if interface in (bindings[name].get("interfaces") or []):
                why = "interface %s is bound to zone %s" % (interface, name)
                if source:
                    why = "source %s is bound to no zone; %s" % (source, why)
                return name, "interface", why
    if not default_zone:
        raise BackendUnavailable("firewalld has no default zone set")
    parts = []
    if source:
        parts.append("source %s is bound to no zone" % source)
    if interface:
        parts.append("interface %s is bound to no zone" % interface)
    if not parts:
        parts.append("no zone, interface or source given")
    return default_zone, "default", "%s: the default zone %s handles it" % ("; ".join(parts), default_zone)


# --------------------------------------------------------------------------- readers

class OnlineReader(object):
    """A running firewalld, through D-Bus (read only)."""

    offline = False

    def __init__(self, fw, client):
        self.fw = fw
        self.client = client

    def default_zone(self):
        return str(self.fw.getDefaultZone())

    def bindings(self, permanent=False):
        if not permanent:
            return plain(self.fw.getActiveZones() or {})
        out = {}
        for name in self.zone_names(permanent=True):
            settings = self.settings(name, permanent=True)
            out[name] = {"interfaces": settings["interfaces"], "sources": settings["sources"]}
        return out

    def zone_names(self, permanent):
        if permanent:
            return [str(z) for z in self.fw.config().getZoneNames()]
        return [str(z) for z in self.fw.getZones()]

    def service_names(self, permanent):
        if permanent:
            return [str(s) for s in self.fw.config().getServiceNames()]
        return [str(s) for s in self.fw.listServices()]

    def settings(self, zone, permanent):
        if permanent:
            raw = self.fw.config().getZoneByName(zone).getSettings().getSettingsDict()
        else:
            raw = self.fw.getZoneSettings(zone).getSettingsDict()
        return normalize_settings(raw)


class OfflineReader(object):
    """The permanent configuration on disk, firewalld not running (read only)."""

    offline = True

    def __init__(self, config_root=ETC_ROOT, system_root=USR_ROOT):
        self.config_root = config_root
        self.system_root = system_root
        self.zone_io = _import_zone_io()

    def _names(self, kind):
        names = set()
        for root in (self.system_root, self.config_root):
            path = os.path.join(root, kind)
            if os.path.isdir(path):
                names.update(f[:-4] for f in os.listdir(path) if f.endswith(".xml"))
        return sorted(names)

    def default_zone(self):
        return conf_value(self.config_root, "DefaultZone") or "public"

    def zone_names(self, permanent=True):
        return self._names("zones")

    def service_names(self, permanent=True):
        return self._names("services")

    def zone_path(self, zone):
        for root in (self.config_root, self.system_root):
            path = os.path.join(root, "zones", zone + ".xml")
            if os.path.exists(path):
                return path
        raise InputError("unknown zone %r (no %s.xml under %s/zones or %s/zones)"
                         % (zone, zone, self.config_root, self.system_root))

    def read_zone(self, zone):
        """firewalld's own zone object (``firewall.core.io.zone.Zone``) read from the zone's file."""
        path = self.zone_path(zone)
        try:
            return self.zone_io.zone_reader(os.path.basename(path), os.path.dirname(path))
        except Exception as exc:
            raise ParseError("cannot read zone %s: %s" % (zone, exc), source=path)

    def settings(self, zone, permanent=True):
        obj = self.read_zone(zone)
        raw = obj.export_config_dict()
        raw["interfaces"] = list(obj.interfaces)
        raw["sources"] = list(obj.sources)
        raw["rules_str"] = list(obj.rules_str)
        return normalize_settings(raw)

    def bindings(self, permanent=True):
        out = {}
        for name in self.zone_names():
            settings = self.settings(name)
            out[name] = {"interfaces": settings["interfaces"], "sources": settings["sources"]}
        return out


def connect(config_root=ETC_ROOT, system_root=USR_ROOT, bus=None, online=OnlineReader, offline=OfflineReader):
    """A backend: the running daemon when it answers on D-Bus, else the files offline.

    Returns ``(backend, reason)``; ``reason`` says why the offline backend was chosen.
    ``online``/``offline`` are the classes to build (the readers by default; the changer
    passes its own, which add ``apply()``).
    """
    client = _import_client()
    try:
        fw = client.FirewallClient(bus=bus) if bus is not None else client.FirewallClient()
        if fw.connected:
            return online(fw, client), None
        reason = "firewalld is not running (nothing owns org.fedoraproject.FirewallD1 on the system bus)"
    except Exception as exc:  # FirewallError(DBUS_ERROR) when there is no system bus
        reason = "firewalld is not reachable on D-Bus (%s)" % (str(exc).strip() or type(exc).__name__)
    return offline(config_root, system_root), reason
