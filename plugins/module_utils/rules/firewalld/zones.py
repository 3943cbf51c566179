# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""firewalld's configuration as facts, and the zone-level answer for a packet.

Reading uses the read side of this collection's firewalld library (``client.py``):
``connect()`` gives the running daemon over D-Bus (``firewall.client``), or the permanent
XML under /etc/firewalld + /usr/lib/firewalld read with firewalld's own zone reader when the
daemon is not running, or with the standard library (``xml.py``) when the
bindings are not installed.  Facts::

    {"running": bool (None: not known), "read_with": "dbus" | "offline (firewall.core.io)" |
     "xml (standard library; no firewalld bindings)", "reason": str|None,
     "version", "backend": "nftables"|"iptables"|None, "default_zone",
     "runtime": {"default_zone", "zones": {NAME: ZONE}, "ipsets": {NAME: IPSET}} | None,
     "permanent": {"default_zone", "zones": {NAME: ZONE}, "ipsets": {NAME: IPSET}},
     "services": {NAME: {"ports": ["22/tcp"], "protocols", "source_ports", "destination", "includes"}},
     "differences": [{"zone", "key", "runtime_only": [...], "permanent_only": [...]}, ...]}

    ZONE = client.normalize_settings() keys, target one of default|ACCEPT|REJECT|DROP,
           plus "service_ports": {service: ["22/tcp", ...]}
    IPSET = client.normalize_ipset(): {"type", "family", "timeout", "options", "entries"}

:func:`zone_answer` tells which zone handles a packet (source bindings - addresses and
ipsets - then interfaces, in firewalld's dispatch order, then the default zone), whether the
zone lets its port in (port, service, protocol, source port) and what the zone's target does
otherwise.
"""

from __future__ import annotations

import ipaddress
import os

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import MissingDependency, NetdiagError, ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import client as fwc
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import xml as firewalld_xml

_TARGETS = {"%%REJECT%%": "REJECT", "REJECT": "REJECT", "ACCEPT": "ACCEPT", "DROP": "DROP",
            "default": "default", "{chain}_{zone}": "default", "": "default"}
_COMPARED = ("target", "services", "ports", "protocols", "source_ports", "forward_ports", "masquerade",
             "forward", "icmp_blocks", "icmp_block_inversion", "rich_rules", "interfaces", "sources", "ingress_priority")
_IPSET_COMPARED = ("type", "family", "timeout", "entries")


def _target(raw):
    return _TARGETS.get(str(raw), str(raw))


class _Reader(object):
    """Zone and service settings from one firewalld backend (online or offline)."""

    def __init__(self, backend):
        self.backend = backend

    def zone(self, name, permanent):
        if getattr(self.backend, "xml", False):
            raw = self.backend.zone_raw(name)
            settings = fwc.normalize_settings(raw)
            settings["target"] = _target(raw.get("target"))
            return settings
        settings = self.backend.settings(name, permanent)
        # normalize_settings() folds %%REJECT%% into "default"; the zone-level answer needs it
        if self.backend.offline:
            raw = self.backend.read_zone(name).target
        elif permanent:
            raw = self.backend.fw.config().getZoneByName(name).getSettings().getSettingsDict().get("target")
        else:
            raw = self.backend.fw.getZoneSettings(name).getSettingsDict().get("target")
        settings["target"] = _target(raw)
        return settings

    def ipsets(self, permanent):
        """``{name: IPSET}`` of one configuration (the offline and XML readers: the permanent one)."""
        return self.backend.ipsets(permanent)

    def service(self, name, permanent):
        if getattr(self.backend, "xml", False):
            raw = self.backend.service_raw(name)
            if raw is None:
                return None
        elif self.backend.offline:
            from firewall.core.io import service as service_io  # the zone reader imported, so does this
            for root in (self.backend.config_root, self.backend.system_root):
                path = os.path.join(root, "services")
                if os.path.exists(os.path.join(path, name + ".xml")):
                    try:
                        obj = service_io.service_reader(name + ".xml", path)
                    except Exception as exc:
                        raise ParseError("cannot read service %s: %s" % (name, exc), source=path)
                    raw = obj.export_config_dict()
                    break
            else:
                return None
        else:
            try:
                if permanent:
                    raw = self.backend.fw.config().getServiceByName(name).getSettings().getSettingsDict()
                else:
                    raw = self.backend.fw.getServiceSettings(name).getSettingsDict()
            except Exception:  # INVALID_SERVICE: a zone names a service that is not defined
                return None
        raw = fwc.plain(raw)
        return {
            "ports": fwc.sort_ports(["%s/%s" % (p[0], p[1]) for p in raw.get("ports") or []]),
            "protocols": sorted(raw.get("protocols") or []),
            "source_ports": fwc.sort_ports(["%s/%s" % (p[0], p[1]) for p in raw.get("source_ports") or []]),
            "destination": dict(raw.get("destination") or {}),
            "includes": sorted(raw.get("includes") or []),
        }


def _config(reader, permanent, services, missing):
    zones = {}
    for name in sorted(reader.backend.zone_names(permanent)):
        zone = reader.zone(name, permanent)
        zone["service_ports"] = {}
        for svc in zone["services"]:
            ports = _service_ports(reader, svc, permanent, services, missing, set())
            zone["service_ports"][svc] = ports
        zones[name] = zone
    return zones


def _service_ports(reader, name, permanent, services, missing, seen):
    """Ports of a service and of the services it includes."""
    if name in seen:
        return []
    seen.add(name)
    key = name
    if key not in services:
        got = reader.service(name, permanent)
        if got is None:
            missing.add(name)
            return []
        services[key] = got
    info = services[key]
    ports = list(info["ports"]) + ["proto:%s" % p for p in info["protocols"]]
    for inc in info["includes"]:
        ports += _service_ports(reader, inc, permanent, services, missing, seen)
    return ports


def differences(runtime, permanent):
    """Runtime vs permanent: one entry per zone and setting that differ."""
    out = []
    if runtime is None or permanent is None:
        return out
    if runtime.get("default_zone") != permanent.get("default_zone"):
        out.append({"zone": None, "key": "default_zone", "runtime_only": [runtime.get("default_zone")],
                    "permanent_only": [permanent.get("default_zone")]})
    rz, pz = runtime["zones"], permanent["zones"]
    for name in sorted(set(rz) | set(pz)):
        if name not in rz or name not in pz:
            out.append({"zone": name, "key": "zone", "runtime_only": [name] if name in rz else [],
                        "permanent_only": [name] if name in pz else []})
            continue
        for key in _COMPARED:
            a, b = rz[name].get(key), pz[name].get(key)
            if a == b:
                continue
            if isinstance(a, list):
                out.append({"zone": name, "key": key, "runtime_only": [x for x in a if x not in b],
                            "permanent_only": [x for x in b if x not in a]})
            else:
                out.append({"zone": name, "key": key, "runtime_only": [a], "permanent_only": [b]})
    # ipsets: {"zone": None, "ipset": NAME, "key": "ipset" (defined on one side) | type | family | timeout | entries}
    ri, pi = runtime.get("ipsets") or {}, permanent.get("ipsets") or {}
    for name in sorted(set(ri) | set(pi)):
        if name not in ri or name not in pi:
            out.append({"zone": None, "ipset": name, "key": "ipset", "runtime_only": [name] if name in ri else [],
                        "permanent_only": [name] if name in pi else []})
            continue
        for key in _IPSET_COMPARED:
            a, b = ri[name].get(key), pi[name].get(key)
            if a == b:
                continue
            if isinstance(a, list):
                out.append({"zone": None, "ipset": name, "key": key, "runtime_only": [x for x in a if x not in b],
                            "permanent_only": [x for x in b if x not in a]})
            else:
                out.append({"zone": None, "ipset": name, "key": key, "runtime_only": [a], "permanent_only": [b]})
    return out


def _conf_value(config_root, key):
    return fwc.conf_value(config_root, key)


def read_firewalld(config_root=fwc.ETC_ROOT, system_root=fwc.USR_ROOT, connect=None):
    """Read firewalld: runtime and permanent over D-Bus, or the permanent files offline.

    Returns None when firewalld is not installed (neither configuration directory exists).
    Without the Python bindings it reads the permanent XML with the standard library and says so.
    """
    if not os.path.isdir(config_root) and not os.path.isdir(system_root):
        return None
    try:
        backend, reason = (connect or fwc.connect)(config_root, system_root)
    except fwc.FirewalldHung as exc:
        backend, reason = _offline(config_root, system_root, "%s; read its permanent files instead, the runtime "
                                   "configuration is not known" % exc)
        return _facts(backend, reason, config_root, running=None)
    except MissingDependency as exc:
        # fall back to the files, with the standard library: the permanent configuration only
        backend = firewalld_xml.XmlBackend(config_root, system_root)
        reason = "%s; read the permanent XML instead, the runtime configuration is not known" % exc
    if not backend.offline:
        try:
            return _facts(backend, reason, config_root)
        except NetdiagError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            # the daemon stopped answering (or went away) in the middle of the read: what it said so far is
            # not one consistent configuration, so read the files instead and say what happened
            if not _is_dbus_error(exc):
                raise
            backend, reason = _offline(config_root, system_root, "firewalld stopped answering on D-Bus during the "
                                       "read (%s); read its permanent files instead, the runtime configuration is "
                                       "not known" % _dbus_text(exc))
            return _facts(backend, reason, config_root, running=None)
    return _facts(backend, reason, config_root)


def _is_dbus_error(exc):
    return any(c.__module__.split(".")[0] in ("dbus", "firewall") for c in type(exc).__mro__[:-1])


def _dbus_text(exc):
    name = getattr(exc, "get_dbus_name", lambda: None)() or type(exc).__name__
    return name if len(str(exc)) > 200 else "%s: %s" % (name, str(exc).strip())


def _offline(config_root, system_root, reason):
    try:
        return fwc.OfflineReader(config_root, system_root), reason
    except MissingDependency:
        return firewalld_xml.XmlBackend(config_root, system_root), reason


def _facts(backend, reason, config_root, running=False):
    """The facts read through ``backend``; ``running``: what to say when it is offline (None: not known - the
    daemon owns its name but did not answer)."""
    reader = _Reader(backend)
    services, missing = {}, set()
    xml = getattr(backend, "xml", False)
    facts = {"running": None if xml or (backend.offline and running is None) else not backend.offline, "reason": reason, "version": None, "backend": None,
             "read_with": "xml (standard library; no firewalld bindings)" if xml else
             "offline (firewall.core.io)" if backend.offline else "dbus",
             "runtime": None, "permanent": None, "services": services, "differences": [], "warnings": []}
    if xml or facts["running"] is None:
        facts["warnings"].append(reason)
    if backend.offline:
        facts["backend"] = _conf_value(config_root, "FirewallBackend") or "nftables"
        facts["permanent"] = {"default_zone": backend.default_zone(), "zones": _config(reader, True, services, missing),
                              "ipsets": reader.ipsets(True)}
    else:
        fw = backend.fw
        facts["version"] = str(fw.get_property("version"))
        conf = fwc.plain(fw.config().get_properties())
        facts["backend"] = conf.get("FirewallBackend")
        facts["runtime"] = {"default_zone": backend.default_zone(), "zones": _config(reader, False, services, missing),
                            "ipsets": reader.ipsets(False)}
        facts["permanent"] = {"default_zone": conf.get("DefaultZone"), "zones": _config(reader, True, services, missing),
                              "ipsets": reader.ipsets(True)}
        facts["differences"] = differences(facts["runtime"], facts["permanent"])
    facts["default_zone"] = (facts["runtime"] or facts["permanent"])["default_zone"]
    for name in sorted(missing):
        facts["warnings"].append("a zone lists service %s, which is not defined" % name)
    return facts


# ----------------------------------------------------------------- the zone-level answer

def _port_in(spec, port, proto):
    rng, _sep, p = spec.rpartition("/")
    if p != proto:
        return False
    lo, hi = fwc.parse_range(rng)   # ParseError naming a port that is not one (saved facts)
    return lo <= port <= hi


def _dest_ok(destination, packet):
    """A service with a destination only applies to packets to that address."""
    if not destination:
        return True
    dst = packet.get("dst")
    fam = "ipv4" if dst is None or ":" not in str(dst) else "ipv6"
    want = destination.get(fam)
    if not want:
        return False
    if dst is None:
        return None
    return ipaddress.ip_address(str(dst)) in ipaddress.ip_network(want, strict=False)


def _zone_verdict(facts, zone, settings, packet):
    """What zone ``zone`` (its ``settings``) does with ``packet``: ``(target, allowed, allowed_by, verdict, reason)``."""
    target = settings.get("target", "default")
    proto = str(packet.get("proto") or "").lower()
    dport = packet.get("dport")
    sport = packet.get("sport")
    allowed_by = []
    state = str(packet.get("ct_state") or "new").lower()
    if state in ("established", "related"):
        allowed_by.append("ct state %s (accepted before the zones)" % state)
    if proto in ("icmp", "ipv6-icmp", "icmpv6"):
        itype = packet.get("icmp_type") or "echo-request"
        blocked = (str(itype) in settings.get("icmp_blocks", [])) != bool(settings.get("icmp_block_inversion"))
        if not blocked and target in ("default", "ACCEPT"):
            allowed_by.append("icmp %s is not blocked (the %s target lets ICMP in)" % (itype, target))
    if dport is not None:
        port = int(dport)
        for spec in settings.get("ports", []):
            if _port_in(spec, port, proto):
                allowed_by.append("port %s" % spec)
        for svc, ports in sorted(settings.get("service_ports", {}).items()):
            dest = (facts.get("services", {}).get(svc) or {}).get("destination")
            for spec in ports:
                if _port_in(spec, port, proto) and _dest_ok(dest, packet) is not False:
                    allowed_by.append("service %s (%s)" % (svc, spec))
        for fp in settings.get("forward_ports", []):
            parts = dict(item.split("=", 1) for item in fp.split(":") if "=" in item)
            if parts.get("proto") == proto and _port_in("%s/%s" % (parts.get("port"), proto), port, proto):
                allowed_by.append("forward-port %s" % fp)
    if sport is not None:
        for spec in settings.get("source_ports", []):
            if _port_in(spec, int(sport), proto):
                allowed_by.append("source-port %s" % spec)
    if proto in settings.get("protocols", []):
        allowed_by.append("protocol %s" % proto)
    for svc, ports in sorted(settings.get("service_ports", {}).items()):
        if "proto:%s" % proto in ports:
            allowed_by.append("service %s (protocol %s)" % (svc, proto))
    allowed = bool(allowed_by)
    if allowed or target == "ACCEPT":
        verdict = "accept"
        reason = ("zone %s allows it: %s" % (zone, ", ".join(allowed_by)) if allowed
                  else "zone %s has target ACCEPT" % zone)
    else:
        verdict = {"DROP": "drop", "REJECT": "reject", "default": "reject"}.get(target)
        reason = "zone %s does not allow %s%s; its target %s %ss it" % (
            zone, "%s/%s" % (dport, proto) if dport is not None else proto, "",
            target, verdict or "decide")
    rich = list(settings.get("rich_rules", []))
    if rich:
        reason += " (the zone has %d rich rule%s; they are not evaluated here, the ruleset verdict includes them)" % (
            len(rich), "" if len(rich) == 1 else "s")
    return target, allowed, allowed_by, verdict, reason


def zone_answer(facts, packet, ruleset_result=None, zone=None):
    """Which zone handles ``packet`` and what that zone does with it.

    ``packet`` is a packet dict (the evaluator's keys); ``zone`` forces the zone (the firewalld guard
    asks what a candidate zone does).  Returns::

        {"config": "runtime"|"permanent", "zone" (None: undecided), "zone_from":
         "given"|"source"|"ipset"|"interface"|"default"|"undecided", "zone_reason", "zone_binding": BINDING|None,
         "zone_candidates": [{zone, binding, why}], "zone_next": {zone, how, reason}|None, "target",
         "allowed": bool|None, "allowed_by": [str], "verdict": "accept"|"reject"|"drop"|None, "reason",
         "rich_rules": [str], "agrees_with_ruleset": bool|None, "disagreement": str|None}

    BINDING is the binding that chose the zone (``{kind: address|ipset|interface|mac, value, ipset?, entry?,
    type?}``); ``zone_next`` is where the source goes without the ipset entry that chose the zone.  When
    the source address alone cannot tell the zone (an ipset of type hash:ip,port or hash:mac, a MAC
    binding, an ipset whose entries are not listed), ``zone`` is None and ``zone_candidates`` lists the
    zones it may be in, in firewalld's order; the verdict is still given when every candidate agrees.
    """
    side = "runtime" if facts.get("runtime") else "permanent"
    config = facts[side]
    zones = config["zones"]
    bindings = {name: {"interfaces": z["interfaces"], "sources": z["sources"], "ingress_priority": z.get("ingress_priority", 0)}
                for name, z in zones.items()}
    got = fwc.zone_resolution(bindings, config["default_zone"], zone=zone, interface=packet.get("iif"),
                              source=packet.get("src"), ipsets=config.get("ipsets") or {})
    how, why = got["how"], got["reason"]
    rich = []
    if got["zone"] is not None:
        settings = zones.get(got["zone"]) or {}
        target, allowed, allowed_by, verdict, reason = _zone_verdict(facts, got["zone"], settings, packet)
        rich = list(settings.get("rich_rules", []))
    else:
        answers = []
        for cand in got["candidates"]:
            if cand["zone"] not in [a[0] for a in answers]:
                answers.append((cand["zone"],) + _zone_verdict(facts, cand["zone"], zones.get(cand["zone"]) or {}, packet))
        verdicts = {a[4] for a in answers}
        target, allowed_by = None, []
        allowed = answers[0][2] if len({a[2] for a in answers}) == 1 else None
        verdict = answers[0][4] if len(verdicts) == 1 else None
        if verdict is not None:
            reason = "the zone is not known (%s), but every zone it may be in says %s: %s" % (
                why, verdict, "; ".join(a[5] for a in answers))
        else:
            reason = "the zone is not known (%s), and the zones it may be in disagree: %s" % (
                why, "; ".join(a[5] for a in answers))
    out = {"config": side, "zone": got["zone"], "zone_from": how, "zone_reason": why, "zone_binding": got["binding"],
           "zone_candidates": got["candidates"], "zone_next": got["next"], "target": target,
           "allowed": allowed, "allowed_by": allowed_by, "verdict": verdict, "reason": reason,
           "rich_rules": rich, "agrees_with_ruleset": None, "disagreement": None}
    if facts.get("running") is None and not str(facts.get("read_with") or "").startswith("xml"):
        out["reason"] = ("firewalld did not answer (%s), so what its zones do now is not known; the loaded ruleset "
                         "decides; its configured zones say: %s" % (facts.get("reason") or "not known why", reason))
        return out
    if not facts.get("running"):
        out["reason"] = "firewalld is not running, so its zones filter nothing now; when it starts: " + reason
        return out
    if ruleset_result is not None and verdict is not None and ruleset_result.get("verdict") in ("accept", "drop", "reject"):
        got = ruleset_result["verdict"]
        out["agrees_with_ruleset"] = got == verdict
        if got != verdict:
            out["disagreement"] = ("firewalld's configuration says %s (%s) but the loaded ruleset says %s (%s)%s"
                                   % (verdict, reason, got, ruleset_result.get("reason"),
                                      "; runtime and permanent differ" if facts.get("differences") else ""))
    return out
