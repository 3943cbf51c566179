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
zone, :func:`normalize_ipset` does the same for an ipset, and :func:`zone_resolution` /
:func:`resolve_zone` tell which zone handles traffic, as firewalld chooses it (source bindings -
addresses and ipsets - before interface bindings, zones in ingress-priority then name order).
"""

from __future__ import annotations

import functools
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
DBUS_NAME = "org.fedoraproject.FirewallD1"
# how long a running firewalld gets to answer before it counts as hung: the bindings' own calls wait 25 s
# each (libdbus's default), and reading a daemon that is stopped (SIGSTOP) or stuck takes minutes of those
PING_TIMEOUT = 5.0


class FirewalldHung(BackendUnavailable):
    """firewalld owns its D-Bus name but does not answer (stopped, stuck, or busy past the timeout)."""


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


def _import_ipset_io():
    try:
        from firewall.core.io import ipset as ipset_io
    except ImportError:
        raise MissingDependency("the firewalld Python bindings (firewall.core.io.ipset)", package=PACKAGE,
                                reason=traceback.format_exc().strip().splitlines()[-1])
    return ipset_io


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
        "rich_rules": sorted(raw.get("rules_str") or []),
        "interfaces": sorted(raw.get("interfaces") or []),
        "sources": sorted(raw.get("sources") or []),
        # firewalld >= 2.0 dispatches zones by it (lower first); older versions have none: all zones are 0
        "ingress_priority": _priority(raw.get("ingress_priority")),
    }


def _priority(value):
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise ParseError("unexpected zone ingress priority %r: not a number" % (value,))


IPSET_FIELDS = ("version", "short", "description", "type", "options", "entries")


def normalize_ipset(raw):
    """firewalld's ipset settings -> our view of an ipset.

    ``raw`` is what firewalld's API returns (``getIPSetSettings()`` / ``getSettings()``: the list
    ``[version, short, description, type, options, entries]``, or ``export_config_dict()``'s dict).
    Returns ``{"type", "family": "inet"|"inet6", "timeout": seconds (0: none), "options", "entries"}``;
    firewalld lists no entries of an ipset with a timeout (they are added at runtime)."""
    raw = plain(raw)
    if hasattr(raw, "settings"):
        raw = plain(raw.settings)
    if isinstance(raw, (list, tuple)):
        raw = dict(zip(IPSET_FIELDS, raw))
    if not isinstance(raw, dict):
        raise ParseError("unexpected ipset settings %r" % (raw,))
    options = {str(k): str(v) for k, v in (raw.get("options") or {}).items()}
    timeout = options.get("timeout") or "0"
    if not is_digits(timeout):
        raise ParseError("unexpected ipset timeout %r: not a number" % (timeout,))
    return {"type": str(raw.get("type") or ""), "family": options.get("family") or "inet", "timeout": int(timeout),
            "options": options, "entries": [str(e) for e in raw.get("entries") or []]}


# --------------------------------------------------------------------------- which zone

def _span(text):
    """An address, a network or a range (``a-b``, ``a-b/mask`` as ipset takes them) -> (version, first, last)."""
    text = str(text).strip()
    if "-" in text:
        lo_text, dummy, hi_text = text.partition("-")
        lo = ipaddress.ip_address(lo_text.strip())
        hi = ipaddress.ip_network(hi_text.strip(), strict=False)
        if lo.version != hi.version:
            raise ValueError("%s mixes IPv4 and IPv6" % text)
        return lo.version, int(lo), int(hi.broadcast_address)
    net = ipaddress.ip_network(text, strict=False)
    return net.version, int(net.network_address), int(net.broadcast_address)


def _relation(src, entry):
    """``inside`` (every address of ``src`` is in ``entry``), ``partly`` or ``outside``."""
    if src[0] != entry[0] or src[2] < entry[1] or src[1] > entry[2]:
        return "outside"
    return "inside" if entry[1] <= src[1] and src[2] <= entry[2] else "partly"


@functools.lru_cache(maxsize=64)
def _entry_spans(entries):
    """``[(entry, span)]`` of an ipset's entries (a tuple), by their address part; the entries this reader cannot
    read are left out (firewalld checked them; such an entry is not this address).  Cached: a verdict per packet
    walks the same sets again and again."""
    out = []
    for entry in entries:
        try:
            out.append((entry, _span(entry.split(",")[0])))
        except ValueError:
            continue
    return out


_NEEDS = {"port": "the source port", "mark": "the packet mark", "iface": "the interface", "mac": "the MAC address"}


def _match_ipset(source, src, name, ipset, without=None):
    """Is ``source`` in ipset ``name`` (leaving out the entry ``without``): ``(True|False|None, entry, why)``;
    None when it cannot be told."""
    if not ipset:
        return None, None, "ipset %s is not defined (or was not read), so whether %s is in it is not known" % (name, source)
    kind = ipset.get("type") or ""
    dims = kind[5:].split(",") if kind.startswith("hash:") else []
    version = 6 if ipset.get("family") == "inet6" else 4
    entries = list(ipset.get("entries") or [])
    if dims and dims[0] == "mac":
        if not entries and not ipset.get("timeout"):
            return False, None, "ipset %s (hash:mac) is empty" % name
        return None, None, "ipset %s holds MAC addresses (type %s): %s's MAC address is not known" % (name, kind, source)
    if not dims or dims[0] not in ("ip", "net"):
        return None, None, "ipset %s has type %r, which this reader does not match addresses against" % (name, kind)
    if src[0] != version:
        return False, None, "ipset %s is an IPv%d set (family %s)" % (name, version, ipset.get("family") or "inet")
    if ipset.get("timeout"):
        return None, None, ("ipset %s has a timeout (%d s): its entries are added at runtime and firewalld does not "
                            "list them, so whether %s is in it is not known" % (name, ipset["timeout"], source))
    partly = None
    for entry, span in _entry_spans(tuple(entries)):
        if entry == without:
            continue
        rel = _relation(src, span)
        if rel == "inside":
            if len(dims) == 1:
                return True, entry, "source %s is in ipset %s (entry %s)" % (source, name, entry)
            return None, entry, ("source %s matches the address of entry %s of ipset %s, but its type %s also needs %s, "
                                 "which the address alone does not tell" % (
                                     source, entry, name, kind, " and ".join(_NEEDS.get(d, d) for d in dims[1:])))
        if rel == "partly" and partly is None:
            partly = entry
    if partly is not None:
        return None, partly, "only part of %s is in ipset %s (entry %s)" % (source, name, partly)
    return False, None, "source %s is not in ipset %s" % (source, name)


def _match_source(source, src, binding, ipsets, without=None):
    """One source binding of a zone against the source: ``(True|False|None, detail)``; ``without``: an
    ``(ipset, entry)`` to leave out."""
    if binding.startswith("ipset:"):
        name = binding[len("ipset:"):]
        ipset = (ipsets or {}).get(name)
        state, entry, why = _match_ipset(source, src, name, ipset, without[1] if without and without[0] == name else None)
        return state, {"kind": "ipset", "value": binding, "ipset": name, "entry": entry,
                       "type": (ipset or {}).get("type"), "why": why}
    try:
        bound = _span(binding)
    except ValueError:
        # a MAC address binding: the packet's MAC is not known
        return None, {"kind": "mac", "value": binding, "why": "zone binding %s is a MAC address: %s's MAC address is not known"
                      % (binding, source)}
    rel = _relation(src, bound)
    detail = {"kind": "address", "value": binding}
    if rel == "inside":
        return True, dict(detail, why="source %s is in binding %s" % (source, binding))
    if rel == "partly":
        return None, dict(detail, why="only part of %s is in binding %s" % (source, binding))
    return False, detail


def _match_interface(interface, binding):
    if binding == interface or (binding.endswith("+") and interface.startswith(binding[:-1])):
        return True, {"kind": "interface", "value": binding, "why": "interface %s is bound to it" % interface}
    return False, None


def _order_note(first, other):
    """Why firewalld dispatches zone ``first`` before ``other`` (both ``(priority, order, zone, ...)``)."""
    if first[0] != other[0]:
        return "zone %s has ingress priority %d, zone %s %d: the lower goes first" % (first[2], first[0], other[2], other[0])
    return "zones of the same ingress priority are dispatched in name order"


def zone_resolution(bindings, default_zone, zone=None, interface=None, source=None, ipsets=None, without=None):
    """Which zone handles traffic, as firewalld dispatches it; a dict.

    ``bindings`` is ``{zone: {"interfaces": [...], "sources": [...], "ingress_priority": int}}`` (sources as
    firewalld lists them: addresses, networks, MAC addresses, ``ipset:NAME``); ``ipsets`` is
    ``{name: normalize_ipset()}``.  firewalld walks every zone binding in the order ``(ingress priority, source
    bindings before interface bindings, zone name)`` - firewalld 1.x has no priorities, so there it is source
    bindings before interface bindings, the zones in name order - and the first one that matches takes the
    packet; the default zone takes the rest.  A source address is in an ``ipset:`` binding when it is within an
    entry of a ``hash:ip``/``hash:net`` set of its family; the other types also need what an address does not
    tell (a source port, a mark, a MAC address), so such a binding leaves the zone undecided, never guessed.

    Returns ``{"zone" (None: undecided), "how": given|source|ipset|interface|default|undecided, "reason",
    "binding": {kind: address|ipset|interface|mac, value, ipset?, entry?, type?} | None,
    "candidates": [{zone, binding, why}] (undecided: the zones it may be, in firewalld's order; the last is the
    one it falls to otherwise), "also": [str] (later source bindings that match as well), "next": {zone, how,
    reason} | None (an ipset binding: where the source goes without that entry)}``.  ``without`` is an
    ``(ipset, entry)`` to leave out (how ``next`` is found).
    """
    out = {"zone": None, "how": None, "reason": None, "binding": None, "candidates": [], "also": [], "next": None}
    if zone:
        return dict(out, zone=zone, how="given", reason="zone %s was given" % zone)
    src = None
    if source:
        try:
            src = _span(source)
        except ValueError:
            raise InputError("invalid source %r: expected an address or a network" % (source,))
    items = []
    for name in sorted(bindings):
        entry = bindings[name] or {}
        prio = _priority(entry.get("ingress_priority"))
        if src is not None:
            items += [(prio, 1, name, str(b)) for b in entry.get("sources") or []]
        if interface:
            items += [(prio, 2, name, str(b)) for b in entry.get("interfaces") or []]
    chosen, undecided = None, []
    for item in sorted(items):
        if item[1] == 1:
            state, detail = _match_source(source, src, item[3], ipsets, without)
        else:
            state, detail = _match_interface(interface, item[3])
        if chosen is None:
            if state is None:
                undecided.append((item, detail))
            elif state:
                chosen = (item, detail)
        elif state and item[1] == 1 and item[2] != chosen[0][2]:
            out["also"].append("it also matches zone %s (%s), which firewalld dispatches after zone %s (%s)" % (
                item[2], detail["why"], chosen[0][2], _order_note(chosen[0], item)))
    if chosen is not None:
        item, detail = chosen
        name = item[2]
        binding = {k: v for k, v in detail.items() if k != "why"}
        if item[1] == 2:
            why = "interface %s is bound to zone %s" % (interface, name)
            if source:
                why = "source %s is bound to no zone; %s" % (source, why)
            fallback = dict(out, zone=name, how="interface", reason=why, binding=binding)
        elif detail["kind"] == "ipset":
            why = "source %s is in ipset %s (entry %s), bound to zone %s" % (source, detail["ipset"], detail["entry"], name)
            fallback = dict(out, zone=name, how="ipset", reason=why, binding=binding)
            nxt = zone_resolution(bindings, default_zone, interface=interface, source=source, ipsets=ipsets,
                                  without=(detail["ipset"], detail["entry"]))
            fallback["next"] = {"zone": nxt["zone"], "how": nxt["how"], "reason": nxt["reason"]}
        else:
            why = "source %s is bound to zone %s (binding %s)" % (source, name, item[3])
            fallback = dict(out, zone=name, how="source", reason=why, binding=binding)
        if out["also"]:
            fallback["reason"] = "%s; %s" % (fallback["reason"], "; ".join(out["also"]))
    else:
        if not default_zone:
            raise BackendUnavailable("firewalld has no default zone set")
        parts = []
        if source:
            parts.append("source %s is bound to no zone" % source)
        if interface:
            parts.append("interface %s is bound to no zone" % interface)
        if not parts:
            parts.append("no zone, interface or source given")
        fallback = dict(out, zone=default_zone, how="default",
                        reason="%s: the default zone %s handles it" % ("; ".join(parts), default_zone))
    if not undecided:
        return fallback
    candidates = [{"zone": item[2], "binding": {k: v for k, v in detail.items() if k != "why"}, "why": detail["why"]}
                  for item, detail in undecided]
    candidates.append({"zone": fallback["zone"], "binding": fallback["binding"], "why": "otherwise: %s" % fallback["reason"]})
    zones = []
    for c in candidates:
        if c["zone"] not in zones:
            zones.append(c["zone"])
    if len(zones) == 1:   # every way leads to the same zone
        return dict(fallback, reason="%s (%s)" % (fallback["reason"], "; ".join(c["why"] for c in candidates[:-1])))
    why = "which zone handles it cannot be told from the source address alone: %s; %s" % (
        "; ".join("zone %s if so (%s)" % (c["zone"], c["why"]) for c in candidates[:-1]), candidates[-1]["why"])
    return dict(out, how="undecided", reason=why, candidates=candidates, also=fallback["also"])


def resolve_zone(bindings, default_zone, zone=None, interface=None, source=None, ipsets=None):
    """Which zone handles the traffic: ``(zone, how, reason)`` (see :func:`zone_resolution`); ``zone`` is
    None (``how`` V(undecided)) when the source address alone cannot tell."""
    got = zone_resolution(bindings, default_zone, zone, interface, source, ipsets)
    return got["zone"], got["how"], got["reason"]


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
            out = {}
            for name in plain(self.fw.getActiveZones() or {}):
                settings = self.settings(name, permanent=False)
                out[name] = {"interfaces": settings["interfaces"], "sources": settings["sources"],
                             "ingress_priority": settings["ingress_priority"]}
            return out
        out = {}
        for name in self.zone_names(permanent=True):
            settings = self.settings(name, permanent=True)
            out[name] = {"interfaces": settings["interfaces"], "sources": settings["sources"],
                         "ingress_priority": settings["ingress_priority"]}
        return out

    def ipsets(self, permanent):
        """``{name: normalize_ipset()}`` of the runtime or the permanent configuration."""
        if permanent:
            config = self.fw.config()
            return {str(n): normalize_ipset(config.getIPSetByName(n).getSettings()) for n in config.getIPSetNames()}
        return {str(n): normalize_ipset(self.fw.getIPSetSettings(n)) for n in self.fw.getIPSets()}

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
            out[name] = {"interfaces": settings["interfaces"], "sources": settings["sources"],
                         "ingress_priority": settings["ingress_priority"]}
        return out

    def ipsets(self, permanent=True):
        """``{name: normalize_ipset()}`` read with firewalld's own ipset reader, /etc over /usr/lib."""
        ipset_io = _import_ipset_io()
        out = {}
        for name in self._names("ipsets"):
            for root in (self.config_root, self.system_root):
                folder = os.path.join(root, "ipsets")
                if os.path.exists(os.path.join(folder, name + ".xml")):
                    try:
                        obj = ipset_io.ipset_reader(name + ".xml", folder)
                    except Exception as exc:
                        raise ParseError("cannot read ipset %s: %s" % (name, exc), source=os.path.join(folder, name + ".xml"))
                    out[name] = normalize_ipset({"type": obj.type, "options": dict(obj.options), "entries": list(obj.entries)})
                    break
        return out


def _ping(bus=None, timeout=PING_TIMEOUT):
    """Ask firewalld for its state with a short timeout before the bindings' long ones: raise
    :class:`FirewalldHung` when it owns its name on the bus but does not answer in ``timeout`` seconds.
    No bus, or nobody owning the name: nothing to say here (``connect`` reports those)."""
    import dbus
    own = None
    try:
        if bus is None:
            # a private connection of its own: the shared one would be made without the main loop that
            # FirewallClient sets up afterwards, and FirewallClient would then refuse it
            bus = own = dbus.SystemBus(private=True)
        if not bus.name_has_owner(DBUS_NAME):
            return
        obj = bus.get_object(DBUS_NAME, "/org/fedoraproject/FirewallD1", introspect=False)
        obj.Get(DBUS_NAME, "state", dbus_interface="org.freedesktop.DBus.Properties", timeout=timeout)
    except dbus.exceptions.DBusException as exc:
        name = exc.get_dbus_name() or ""
        if name in ("org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Timeout",
                    "org.freedesktop.DBus.Error.TimedOut"):
            raise FirewalldHung("firewalld owns %s on the system bus but did not answer within %g s (stopped, stuck or "
                                "busy)" % (DBUS_NAME, timeout))
        # anything else (no system bus, access denied): FirewallClient below says what it is
    finally:
        if own is not None:
            own.close()


def connect(config_root=ETC_ROOT, system_root=USR_ROOT, bus=None, online=OnlineReader, offline=OfflineReader):
    """A backend: the running daemon when it answers on D-Bus, else the files offline.

    A daemon that owns its name but does not answer within :data:`PING_TIMEOUT` raises
    :class:`FirewalldHung`: reading may fall back to the files (``read_firewalld`` does), changing
    must not (the daemon would not see the change, and may resume with its own runtime).

    Returns ``(backend, reason)``; ``reason`` says why the offline backend was chosen.
    ``online``/``offline`` are the classes to build (the readers by default; the changer
    passes its own, which add ``apply()``).
    """
    client = _import_client()
    _ping(bus)
    try:
        fw = client.FirewallClient(bus=bus) if bus is not None else client.FirewallClient()
        if fw.connected:
            return online(fw, client), None
        reason = "firewalld is not running (nothing owns org.fedoraproject.FirewallD1 on the system bus)"
    except Exception as exc:  # FirewallError(DBUS_ERROR) when there is no system bus
        reason = "firewalld is not reachable on D-Bus (%s)" % (str(exc).strip() or type(exc).__name__)
    return offline(config_root, system_root), reason
