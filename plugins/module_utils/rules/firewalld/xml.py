# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""firewalld's permanent configuration read from its XML files with the standard library.

The fallback when the firewalld Python bindings (``python3-firewall``) are not installed:
zones, services and ipsets under /etc/firewalld override those of the same name under
/usr/lib/firewalld, as firewalld itself loads them.  Each zone comes out as the settings dict
firewalld's own API returns (``getSettingsDict()``), each ipset as its ``export_config_dict()``,
so the same normalisation applies; rich rules are written back in firewalld's rich-rule language.  Only the permanent configuration
can be read this way: the runtime one lives in the daemon.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld.client import conf_value, normalize_ipset

_FLAG_ELEMENTS = ("masquerade", "forward", "icmp-block-inversion")


def _files(config_root, system_root, kind):
    """``{name: path}`` of the zone, service or ipset files, /etc overriding /usr/lib."""
    found = {}
    for root in (system_root, config_root):
        folder = os.path.join(root, kind)
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            if entry.endswith(".xml"):
                found[entry[:-4]] = os.path.join(folder, entry)
    return found


def _parse(path):
    try:
        return ET.parse(path).getroot()
    except (ET.ParseError, OSError, LookupError, ValueError) as exc:  # LookupError: an unknown encoding
        raise ParseError("cannot read %s: %s" % (path, exc), source=path)


def _ports(root, tag="port"):
    return [(el.get("port"), el.get("protocol")) for el in root.findall(tag) if el.get("port")]


def _protocols(root):
    """``<protocol value=.../>``, and ``<port protocol="esp" port=""/>``, which firewalld reads as a protocol."""
    out = [el.get("value") for el in root.findall("protocol") if el.get("value")]
    out += [el.get("protocol") for el in root.findall("port") if not el.get("port") and el.get("protocol")]
    return out


def _quote(value):
    return '"%s"' % str(value).replace('"', '\\"')


# the order firewalld prints the attributes of a rich-rule element in
_ATTR_ORDER = ("address", "mac", "ipset", "name", "value", "port", "protocol", "to-port", "to-addr",
               "prefix", "level", "type", "set")


def _attr_rank(key):
    return _ATTR_ORDER.index(key) if key in _ATTR_ORDER else len(_ATTR_ORDER)


def rich_rule_text(rule):
    """A ``<rule>`` element in firewalld's rich-rule language (what ``--list-rich-rules`` prints)."""
    words = ["rule"]
    if rule.get("priority") not in (None, "0"):
        words.append("priority=%s" % _quote(rule.get("priority")))
    if rule.get("family"):
        words.append("family=%s" % _quote(rule.get("family")))
    for child in rule:
        tag = child.tag
        attrs = dict(child.attrib)
        invert = str(attrs.pop("invert", "")).lower() in ("true", "yes", "1")
        words.append(tag)
        if invert:
            words.append("NOT")
        if tag == "reject" and "type" in attrs:
            words.append("type=%s" % _quote(attrs.pop("type")))
        for key in sorted(attrs, key=_attr_rank):
            words.append("%s=%s" % (key, _quote(attrs[key])))
        for sub in child:    # <limit value="..."/> inside log, audit, accept, reject, drop, mark
            words.append(sub.tag)
            words += ["%s=%s" % (k, _quote(v)) for k, v in sorted(sub.attrib.items())]
    return " ".join(words)


def zone_settings(path):
    """One zone file as firewalld's settings dict."""
    root = _parse(path)
    if root.tag != "zone":
        raise ParseError("%s is not a firewalld zone (root element <%s>)" % (path, root.tag), source=path)
    sources = []
    for el in root.findall("source"):
        if el.get("address"):
            sources.append(el.get("address"))
        elif el.get("ipset"):
            sources.append("ipset:%s" % el.get("ipset"))
        elif el.get("mac"):
            sources.append(el.get("mac"))
    return {
        "target": root.get("target") or "default",
        "services": [el.get("name") for el in root.findall("service") if el.get("name")],
        "ports": _ports(root),
        "protocols": _protocols(root),
        "source_ports": _ports(root, "source-port"),
        "forward_ports": [(el.get("port"), el.get("protocol"), el.get("to-port") or "", el.get("to-addr") or "")
                          for el in root.findall("forward-port")],
        "masquerade": root.find("masquerade") is not None,
        "forward": root.find("forward") is not None,
        "icmp_blocks": [el.get("name") for el in root.findall("icmp-block") if el.get("name")],
        "icmp_block_inversion": root.find("icmp-block-inversion") is not None,
        "rules_str": [rich_rule_text(el) for el in root.findall("rule")],
        "interfaces": [el.get("name") for el in root.findall("interface") if el.get("name")],
        "sources": sources,
        "ingress_priority": root.get("ingress-priority") or 0,
    }


def ipset_settings(path):
    """One ipset file as firewalld's settings dict (``type``, ``options``, ``entries``)."""
    root = _parse(path)
    if root.tag != "ipset":
        raise ParseError("%s is not a firewalld ipset (root element <%s>)" % (path, root.tag), source=path)
    if not root.get("type"):
        raise ParseError("%s: the ipset has no type" % path, source=path)
    return {
        "type": root.get("type"),
        "options": {el.get("name"): el.get("value") or "" for el in root.findall("option") if el.get("name")},
        "entries": [(el.text or "").strip() for el in root.findall("entry") if (el.text or "").strip()],
    }


def service_settings(path):
    """One service file as firewalld's settings dict."""
    root = _parse(path)
    if root.tag != "service":
        raise ParseError("%s is not a firewalld service (root element <%s>)" % (path, root.tag), source=path)
    dest = root.find("destination")
    return {
        "ports": _ports(root),
        "protocols": _protocols(root),
        "source_ports": _ports(root, "source-port"),
        "destination": {k: v for k, v in (dest.attrib.items() if dest is not None else []) if k in ("ipv4", "ipv6")},
        "includes": [el.get("service") for el in root.findall("include") if el.get("service")],
    }


class XmlBackend(object):
    """The permanent configuration from the files; the interface the zone reader uses."""

    offline = True
    xml = True

    def __init__(self, config_root, system_root):
        self.config_root = config_root
        self.system_root = system_root
        self._zones = _files(config_root, system_root, "zones")
        self._services = _files(config_root, system_root, "services")
        self._ipsets = _files(config_root, system_root, "ipsets")

    def zone_names(self, permanent=True):
        return sorted(self._zones)

    def zone_raw(self, name):
        return zone_settings(self._zones[name])

    def service_raw(self, name):
        path = self._services.get(name)
        return service_settings(path) if path else None

    def ipsets(self, permanent=True):
        return {name: normalize_ipset(ipset_settings(path)) for name, path in sorted(self._ipsets.items())}

    def default_zone(self):
        return conf_value(self.config_root, "DefaultZone") or "public"
