# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Open or close ports, services and rich rules in a firewalld zone, runtime and permanent.

The plan is computed first, as pure data, from the zone's current settings; check mode
returns the plan and never touches the daemon or the files.  Port ranges follow
firewalld's own semantics (``coalescePortRange``/``breakPortRange`` in
``firewall.functions``): adding a range merges it with the ranges it overlaps, removing
one splits the ranges it cuts.  Rich rules are compared in the text firewalld normalises them to
(``str(firewall.core.rich.Rich_Rule(rule_str=...))``, what it stores and lists).  The predicted
settings are therefore exactly what firewalld stores afterwards.

Live changes go through the firewalld D-Bus API (``firewall.client``).  When the daemon
is not running, the permanent configuration is edited offline with firewalld's own zone
reader and writer (``firewall.core.io.zone``) under a configuration root (``/etc/firewalld``
by default), the way ``firewall-offline-cmd`` does.  Reading the zones (settings, bindings,
names, which zone handles traffic) is the read side in ``rules/firewalld/client.py``; the
backends here extend its readers with ``apply()``.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
import traceback

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    BackendUnavailable, InputError, MissingDependency, NetdiagError)
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import (
    PROTOCOLS, parse_port_spec)
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld.client import (
    ETC_ROOT, PACKAGE, FirewalldHung, USR_ROOT, OfflineReader, OnlineReader, parse_range, sort_ports, zone_resolution)
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld.client import connect as connect_reader


class FirewalldError(NetdiagError):
    """firewalld refused or failed an operation (message from the daemon)."""


# --------------------------------------------------------------------------- input

def _rich_rule_class():
    try:
        from firewall.core.rich import Rich_Rule
    except ImportError:
        raise MissingDependency("the firewalld Python bindings (firewall.core.rich)", package=PACKAGE,
                                reason=traceback.format_exc().strip().splitlines()[-1])
    return Rich_Rule


def normalize_rich_rule(text):
    """A rich rule as firewalld stores and lists it (``str(Rich_Rule(rule_str=text))``), checked with
    firewalld's own parser; InputError naming the rule when it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("invalid rich rule %r: expected the text of a firewalld rich rule "
                         "(rule family=\"ipv4\" source address=\"...\" port port=\"...\" protocol=\"tcp\" accept)" % (text,))
    rich_rule = _rich_rule_class()
    try:
        rule = rich_rule(rule_str=text.strip())
        rule.check()
    except Exception as exc:  # firewall.errors.FirewallError: INVALID_RULE and friends, with firewalld's words
        raise InputError("invalid rich rule %r: %s" % (text, str(exc).strip() or type(exc).__name__))
    return str(rule)


def normalize_request(ports=None, services=None, protocol="tcp", state="present", runtime=True,
                      permanent=True, timeout=0, zone=None, interface=None, source=None, rich_rules=None):
    """Validate what the user asked for; return a dict or raise InputError naming the value."""
    if state not in ("present", "absent"):
        raise InputError("invalid state %r: expected present or absent" % (state,))
    if protocol not in PROTOCOLS:
        raise InputError("invalid protocol %r: expected one of %s" % (protocol, ", ".join(PROTOCOLS)))
    ports = list(ports or [])
    services = list(services or [])
    if not isinstance(rich_rules or [], list):
        raise InputError("invalid rich_rules %r: expected a list of rich rules" % (rich_rules,))
    if not ports and not services and not rich_rules:
        raise InputError("nothing to do: give ports, services or rich_rules")
    parsed = []
    for spec in ports:
        item = parse_port_spec(spec, default_protocol=protocol)
        key = (item["first"], item["last"], item["protocol"])
        if key not in [(p["first"], p["last"], p["protocol"]) for p in parsed]:
            parsed.append(item)
    names = []
    for name in services:
        if not isinstance(name, str) or not name.strip() or any(c.isspace() or c == "/" for c in name.strip()):
            raise InputError("invalid service name %r" % (name,))
        if name.strip() not in names:
            names.append(name.strip())
    rules = []
    for text in rich_rules or []:
        rule = normalize_rich_rule(text)
        if rule not in rules:
            rules.append(rule)
    if not runtime and not permanent:
        raise InputError("runtime and permanent are both false: nothing would be changed")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
        raise InputError("invalid timeout %r: expected a whole number of seconds >= 0" % (timeout,))
    if timeout:
        if state != "present":
            raise InputError("timeout %r only applies to state=present (a runtime opening that reverts)" % timeout)
        if permanent or not runtime:
            raise InputError("timeout %r applies to the runtime configuration only: set permanent: false"
                             % timeout)
    if zone is not None and (interface or source):
        raise InputError("give zone %r, or interface/source to find the zone, not both" % zone)
    if zone is not None and (not isinstance(zone, str) or not zone.strip()):
        raise InputError("invalid zone name %r" % (zone,))
    if source:
        try:
            ipaddress.ip_network(source, strict=False)
        except ValueError:
            raise InputError("invalid source %r: expected an address or a network (10.0.0.0/8)" % (source,))
    return {"ports": parsed, "services": names, "rich_rules": rules, "state": state, "runtime": bool(runtime),
            "permanent": bool(permanent), "timeout": timeout, "zone": zone,
            "interface": interface, "source": source}


# --------------------------------------------------------------------------- pure logic

def _port_text(rng):
    return "%d" % rng[0] if rng[0] == rng[1] else "%d-%d" % rng


def _coalesce(new, ranges):
    """firewalld's coalescePortRange: (range to add, [ranges it replaces])."""
    lo, hi = new
    removed = []
    for r in sorted(ranges, key=lambda x: x[0]):  # firewalld's order: stable, by first port
        if lo <= r[0] and hi >= r[1]:
            removed.append(r)
        elif lo <= r[0] and hi < r[1] and hi >= r[0]:
            removed.append(r)
            hi = r[1]
        elif lo > r[0] and hi >= r[1] and lo <= r[1]:
            removed.append(r)
            lo = r[0]
    return (lo, hi), removed


def _break(cut, ranges):
    """firewalld's breakPortRange: ([ranges added], [ranges removed])."""
    lo, hi = cut
    added, removed = [], []
    for r in sorted(ranges, key=lambda x: x[0]):  # firewalld's order: stable, by first port
        if lo <= r[0] and hi >= r[1]:
            removed.append(r)
        elif lo <= r[0] and hi < r[1] and hi >= r[0]:
            removed.append(r)
            added.append((hi + 1, r[1]))
        elif lo > r[0] and hi >= r[1] and lo <= r[1]:
            removed.append(r)
            added.append((r[0], lo - 1))
        elif lo > r[0] and hi < r[1]:
            removed.append(r)
            added.append((r[0], lo - 1))
            added.append((hi + 1, r[1]))
    return added, removed


def _covered(rng, ranges):
    """True when the union of ``ranges`` covers every port of ``rng``."""
    nxt = rng[0]
    for r in sorted(ranges):
        if r[0] > nxt:
            break
        nxt = max(nxt, r[1] + 1)
        if nxt > rng[1]:
            return True
    return nxt > rng[1]


def plan_zone(settings, request):
    """Operations that bring one side (runtime or permanent) of a zone to the request.

    ``settings`` is a normalized settings dict (see ``client.normalize_settings``).  Returns
    ``(operations, predicted_settings)``; each operation is a dict ``{action, port,
    protocol}``, ``{action, service}`` or ``{action, rich_rule}`` that maps 1:1 to a firewalld API
    call, in order.  Rich rules are compared as firewalld normalises them (``request`` holds them so).
    """
    ports = [(parse_range(p.rpartition("/")[0]), p.rpartition("/")[2]) for p in settings["ports"]]
    services = list(settings["services"])
    ops = []
    present = request["state"] == "present"
    for item in request["ports"]:
        want = (item["first"], item["last"])
        proto = item["protocol"]
        if present:
            same = [r for r, pr in ports if pr == proto]
            if _covered(want, same):
                continue
            new, removed = _coalesce(want, same)
            ports = [(r, pr) for r, pr in ports if not (pr == proto and r in removed)] + [(new, proto)]
            ops.append({"action": "add_port", "port": _port_text(want), "protocol": proto})
        else:
            while True:
                hit = [r for r, pr in ports if pr == proto and r[0] <= want[1] and r[1] >= want[0]]
                if not hit:
                    break
                cut = (max(hit[0][0], want[0]), min(hit[0][1], want[1]))
                same = [r for r, pr in ports if pr == proto]
                added, removed = _break(cut, same)
                ports = [(r, pr) for r, pr in ports if not (pr == proto and r in removed)]
                ports += [(r, proto) for r in added]
                ops.append({"action": "remove_port", "port": _port_text(cut), "protocol": proto})
    for name in request["services"]:
        if present and name not in services:
            services.append(name)
            ops.append({"action": "add_service", "service": name})
        elif not present and name in services:
            services.remove(name)
            ops.append({"action": "remove_service", "service": name})
    rich = list(settings.get("rich_rules") or [])
    for rule in request.get("rich_rules") or []:
        if present and rule not in rich:
            rich.append(rule)
            ops.append({"action": "add_rich_rule", "rich_rule": rule})
        elif not present and rule in rich:
            rich.remove(rule)
            ops.append({"action": "remove_rich_rule", "rich_rule": rule})
    after = dict(settings)
    after["ports"] = sort_ports(["%s/%s" % (_port_text(r), pr) for r, pr in ports])
    after["services"] = sorted(services)
    after["rich_rules"] = sorted(rich)
    return ops, after


def describe_operation(op):
    if "rich_rule" in op:
        return "%s rich rule '%s'" % (op["action"].split("_")[0], op["rich_rule"])
    if "service" in op:
        return "%s service %s" % (op["action"].split("_")[0], op["service"])
    return "%s port %s/%s" % (op["action"].split("_")[0], op["port"], op["protocol"])


def check_zone(zone, zones, where):
    if zone not in zones:
        raise InputError("unknown zone %r (%s zones: %s)" % (zone, where, ", ".join(sorted(zones))))


def check_names(request, zones, services, where, current=None):
    """Raise InputError for an unknown zone or service (``where``: runtime/permanent/offline).

    A service that is not defined can still be removed from a zone that lists it.
    """
    check_zone(request["zone_resolved"], zones, where)
    listed = (current or {}).get("services") or []
    unknown = [s for s in request["services"] if s not in services
               and not (request["state"] == "absent" and s in listed)]
    if unknown:
        raise InputError("unknown service%s %s (not defined in the %s configuration)"
                         % ("s" if len(unknown) > 1 else "", ", ".join(repr(s) for s in unknown), where))


# --------------------------------------------------------------------------- backends

class OnlineBackend(OnlineReader):
    """A running firewalld, through D-Bus: the reader, and the changes."""

    def apply(self, zone, ops, permanent, timeout=0):
        target = self.fw.config().getZoneByName(zone) if permanent else None
        for index, op in enumerate(ops):
            action = op["action"]
            try:
                if "rich_rule" in op:
                    add = action == "add_rich_rule"
                    if permanent:
                        getattr(target, "addRichRule" if add else "removeRichRule")(op["rich_rule"])
                    elif add:
                        self.fw.addRichRule(zone, op["rich_rule"], timeout)
                    else:
                        self.fw.removeRichRule(zone, op["rich_rule"])
                elif permanent:
                    if "service" in op:
                        getattr(target, "addService" if action == "add_service" else "removeService")(op["service"])
                    elif action == "add_port":
                        target.addPort(op["port"], op["protocol"])
                    else:
                        target.removePort(op["port"], op["protocol"])
                elif action == "add_service":
                    self.fw.addService(zone, op["service"], timeout)
                elif action == "remove_service":
                    self.fw.removeService(zone, op["service"])
                elif action == "add_port":
                    self.fw.addPort(zone, op["port"], op["protocol"], timeout)
                else:
                    self.fw.removePort(zone, op["port"], op["protocol"])
            except Exception as exc:  # dbus.exceptions.DBusException carries firewalld's message
                msg = exc.get_dbus_message() if hasattr(exc, "get_dbus_message") else str(exc)
                error = FirewalldError("firewalld refused to %s in zone %s (%s): %s"
                                       % (describe_operation(op), zone,
                                          "permanent" if permanent else "runtime", msg))
                error.done = index
                raise error


class OfflineBackend(OfflineReader):
    """The permanent configuration on disk, firewalld not running: the reader, and the changes."""

    def apply(self, zone, ops, permanent=True, timeout=0):
        """Write ``<config_root>/zones/<zone>.xml`` atomically, keeping a ``.old`` backup."""
        obj = self.read_zone(zone)
        ports = [(parse_range(p), proto) for p, proto in obj.ports]
        services = list(obj.services)
        rules = list(obj.rules_str)
        for op in ops:
            if op["action"] == "add_rich_rule":
                rules.append(op["rich_rule"])
            elif op["action"] == "remove_rich_rule":
                rules = [r for r in rules if r != op["rich_rule"]]
            elif op["action"] == "add_service":
                services.append(op["service"])
            elif op["action"] == "remove_service":
                services = [s for s in services if s != op["service"]]
            else:
                proto = op["protocol"]
                same = [r for r, pr in ports if pr == proto]
                if op["action"] == "add_port":
                    new, removed = _coalesce(parse_range(op["port"]), same)
                    added = [new]
                else:
                    added, removed = _break(parse_range(op["port"]), same)
                ports = [(r, pr) for r, pr in ports if not (pr == proto and r in removed)]
                ports += [(r, proto) for r in added]
        obj.ports = [(_port_text(r), proto) for r, proto in ports]
        obj.services = services
        obj.rules_str = rules   # the zone object rebuilds its Rich_Rule list from the texts
        zones_dir = os.path.join(self.config_root, "zones")
        if not os.path.isdir(zones_dir):
            os.makedirs(zones_dir, 0o750)
        dest = os.path.join(zones_dir, zone + ".xml")
        tmpdir = tempfile.mkdtemp(prefix=".netdiag-", dir=self.config_root)
        try:
            obj.filename = zone + ".xml"
            self.zone_io.zone_writer(obj, tmpdir)
            written = os.path.join(tmpdir, zone + ".xml")
            if os.path.exists(dest):
                shutil.copy2(dest, dest + ".old")
                shutil.copymode(dest, written)
            else:
                os.chmod(written, 0o640)
            os.replace(written, dest)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return dest


def connect(config_root=ETC_ROOT, system_root=USR_ROOT, bus=None):
    """A backend: the running daemon when it answers on D-Bus, else the files offline.

    Returns ``(backend, reason)``; ``reason`` says why the offline backend was chosen.
    """
    try:
        return connect_reader(config_root, system_root, bus=bus, online=OnlineBackend, offline=OfflineBackend)
    except FirewalldHung as exc:
        # not offline: a daemon that resumes keeps its own runtime and would not see an edit of its files
        raise FirewalldHung("%s: nothing was changed; restart firewalld (or wait for it) and run again" % exc)


# --------------------------------------------------------------------------- the run

def ensure(backend, request, check_mode=False, offline_reason=None):
    """Compute and (unless ``check_mode``) apply the request; return the result dict.

    ``request`` comes from :func:`normalize_request`.  Nothing is changed when any
    input is invalid: every name is checked before the first call that changes anything.
    """
    sides = []
    notes = []
    if backend.offline:
        sides = ["permanent"]
        if request["permanent"] is False:
            raise BackendUnavailable("%s; the runtime configuration (permanent: false) cannot be changed"
                                     % (offline_reason or "firewalld is not running"))
    else:
        if request["runtime"]:
            sides.append("runtime")
        if request["permanent"]:
            sides.append("permanent")

    primary_permanent = backend.offline or not request["runtime"]
    bindings = backend.bindings(permanent=primary_permanent)
    ipsets = {}
    if request["source"] and any(str(s).startswith("ipset:") for b in bindings.values() for s in b.get("sources") or []):
        ipsets = backend.ipsets(permanent=primary_permanent)
    got = zone_resolution(bindings, backend.default_zone(), request["zone"], request["interface"], request["source"], ipsets)
    if got["zone"] is None:   # never a guess: the source address alone does not tell the zone
        raise InputError("%s: give zone (the zone to change)" % got["reason"])
    zone, how, reason = got["zone"], got["how"], got["reason"]
    request = dict(request, zone_resolved=zone)
    for side in sides:
        permanent = side == "permanent"
        check_zone(zone, backend.zone_names(permanent), "offline" if backend.offline else side)

    before, after, plans = {}, {}, {}
    for side in sides:
        permanent = side == "permanent"
        current = backend.settings(zone, permanent=permanent)
        check_names(request, backend.zone_names(permanent), backend.service_names(permanent),
                    "offline" if backend.offline else side, current)
        ops, predicted = plan_zone(current, request)
        before[side], after[side], plans[side] = current, predicted, ops

    changes = [dict(op, config=side) for side in sides for op in plans[side]]
    changed = bool(changes)
    written = None
    if changed and not check_mode:
        done = []
        for side in sides:
            if plans[side]:
                try:
                    res = backend.apply(zone, plans[side], permanent=(side == "permanent"),
                                        timeout=request["timeout"] if side == "runtime" else 0)
                except FirewalldError as exc:
                    exc.changes = done + [dict(op, config=side) for op in plans[side][:exc.done]]
                    raise
                done += [dict(op, config=side) for op in plans[side]]
                if backend.offline:
                    written = res
        for side in sides:
            actual = backend.settings(zone, permanent=(side == "permanent"))
            if actual != after[side]:
                notes.append("the %s settings of zone %s differ from the prediction after the change "
                             "(something else changed them at the same time?)" % (side, zone))
            after[side] = actual
    if backend.offline and request["runtime"]:
        notes.insert(0, offline_note(offline_reason, changed, check_mode))
    return {
        "changed": changed,
        "zone": zone,
        "zone_from": how,
        "zone_reason": reason,
        "offline": backend.offline,
        "config_file": written if written else (
            os.path.join(backend.config_root, "zones", zone + ".xml") if backend.offline else None),
        "configs": sides,
        "changes": changes,
        "ports_changed": ports_changed(changes),
        "runtime_ports_changed": ports_changed([c for c in changes if c.get("config") == "runtime"]),
        "rich_rules_changed": rich_rules_changed(changes),
        "runtime_rich_rules_changed": rich_rules_changed([c for c in changes if c.get("config") == "runtime"]),
        "notes": notes,
        "settings": {"before": before, "after": after},
        "diff": {"before": render_settings(zone, before), "after": render_settings(zone, after),
                 "before_header": "zone %s (%s)" % (zone, ", ".join(sides)),
                 "after_header": "zone %s (%s)" % (zone, ", ".join(sides))},
        "msg": summary(zone, changes, request, check_mode, backend.offline),
    }


def ports_changed(changes):
    """``PORT/PROTO`` of every port change, once each, in order (services are not ports): undoing
    exactly this call is the opposite state for these ports in the same configuration."""
    out = []
    for change in changes:
        if "port" in change:
            port = "%s/%s" % (change["port"], change.get("protocol"))
            if port not in out:
                out.append(port)
    return out


def rich_rules_changed(changes):
    """The rich rules (as firewalld normalises them) of every rich-rule change, once each, in order: undoing
    exactly this call is the opposite state for these rules in the same configuration."""
    out = []
    for change in changes:
        if "rich_rule" in change and change["rich_rule"] not in out:
            out.append(change["rich_rule"])
    return out


_LIST_LABELS = (("services", "service"), ("ports", "port"), ("protocols", "protocol"),
                ("source_ports", "source-port"), ("forward_ports", "forward-port"),
                ("icmp_blocks", "icmp-block"), ("rich_rules", "rich-rule"),
                ("interfaces", "interface"), ("sources", "source"))
_FLAG_LABELS = (("masquerade", "masquerade"), ("forward", "forward"),
                ("icmp_block_inversion", "icmp-block-inversion"))


def render_settings(zone, by_side):
    """Settings per side as text, one self-describing line per item, for Ansible's --diff."""
    lines = []
    for side in ("runtime", "permanent"):
        if side not in by_side:
            continue
        settings = by_side[side]
        prefix = "%s zone %s:" % (side, zone)
        lines.append("%s target %s" % (prefix, settings["target"]))
        for key, label in _FLAG_LABELS:
            lines.append("%s %s %s" % (prefix, label, "yes" if settings[key] else "no"))
        for key, label in _LIST_LABELS:
            for item in settings[key]:
                lines.append("%s %s %s" % (prefix, label, item))
    return "\n".join(lines) + "\n"


def offline_note(reason, changed, check_mode):
    """What an offline run did to the permanent configuration - only what it did: a check-mode run wrote nothing."""
    reason = reason or "firewalld is not running"
    effect = "the runtime is unchanged and the change takes effect when firewalld starts"
    if not changed:
        return "%s: read the permanent configuration offline; it already has what was asked" % reason
    if check_mode:
        return ("%s: nothing was written (check mode); a run without check mode would have "
                "edited the permanent configuration offline; %s" % (reason, effect))
    return "%s: edited the permanent configuration offline; %s" % (reason, effect)


def summary(zone, changes, request, check_mode, offline):
    if not changes:
        return "zone %s already %s what was asked" % (zone, "has" if request["state"] == "present" else "lacks")
    by_side = {}
    for ch in changes:
        by_side.setdefault(ch["config"], []).append(describe_operation(ch))
    parts = ["%s: %s" % (side, ", ".join(items)) for side, items in by_side.items()]
    verb = "would change" if check_mode else "changed"
    text = "%s zone %s (%s)" % (verb, zone, "; ".join(parts))
    if offline:
        text += " offline, firewalld not running"
    return text
