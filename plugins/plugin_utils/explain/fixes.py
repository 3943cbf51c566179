# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Culprits and fixes: which firewall layer (nftables, iptables, firewalld, ufw) made the rule that
decided, and the smallest change that lets exactly the flow through it.
"""

from __future__ import annotations

import re

from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import zones as fw_zones
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.verify import check


_ZONE_RE = re.compile(r"^(?:filter_)?IN_([A-Za-z0-9_.-]+?)(?:_(?:allow|deny|log|pre|post))?$")


def _firewalld_zone(origin, fw_facts):
    if not origin:
        return None
    m = _ZONE_RE.match(origin.get("chain") or "")
    if m and (origin.get("table") == "firewalld" or (origin.get("backend") or "").startswith("iptables")):
        return m.group(1)
    return None


def _is_firewalld(origin, fw_facts):
    """firewalld made this rule: its own nft table, or its iptables-backend zone chains."""
    if origin and origin.get("table") == "firewalld":
        return True
    layers = (fw_facts or {}).get("layers") or {}
    fwd = layers.get("firewalld") if isinstance(layers, dict) else None
    if isinstance(fwd, dict) and fwd.get("active") is False:
        return False
    return _firewalld_zone(origin, fw_facts) is not None


def _firewalld_decided(origin, fw_facts):
    """The zone answer names the culprit only when firewalld runs and its own rules decided: a
    host with firewalld installed but stopped (zone files on disk) is decided by whatever else
    is loaded (iptables, nftables), and that is the culprit."""
    fwd = (fw_facts or {}).get("firewalld") or {}
    if not fwd.get("running"):
        return False
    if origin.get("table") == "firewalld":
        return True
    if _firewalld_zone(origin, fw_facts) is not None:
        return True
    # iptables backend: firewalld's own INPUT chain ends in its catch-all reject
    return fwd.get("backend") == "iptables" and (origin.get("backend") or "").startswith("iptables") \
        and (origin.get("chain") or "") == "INPUT" and not _is_ufw(origin, fw_facts)


def _ruleset_of(fw_facts):
    fw_facts = fw_facts or {}
    return fw_facts.get("ruleset") if "tables" not in fw_facts else fw_facts


def _is_ufw(origin, fw_facts):
    """ufw made this rule, or the decision is the policy of a chain ufw hooks into."""
    if origin and (origin.get("chain") or "").startswith("ufw"):
        return True
    if not origin or not (origin.get("backend") or "").startswith("iptables"):
        return False
    for table in (_ruleset_of(fw_facts) or {}).get("tables", []):
        if table.get("name") == origin.get("table") and table.get("family") == origin.get("family"):
            return any((c.get("name") or "").startswith("ufw-") for c in table.get("chains", []))
    return False


def culprit_rule(host, verdict, fw_facts=None):
    if verdict is None:
        return None
    rule = verdict.get("rule")
    out = {"kind": "firewall", "host": host, "verdict": verdict.get("verdict"),
           "policy": bool(verdict.get("policy")), "reply": verdict.get("reply")}
    if rule:
        out.update({"backend": rule.get("backend"), "family": rule.get("family"), "table": rule.get("table"),
                    "chain": rule.get("chain"), "handle": rule.get("handle"), "line": rule.get("line"),
                    "text": rule.get("text")})
    elif verdict.get("chain"):
        ch = verdict["chain"]
        out.update({"backend": ch.get("backend"), "family": ch.get("family"), "table": ch.get("table"),
                    "chain": ch.get("chain"), "text": "policy %s of chain %s" % (verdict.get("verdict"), ch.get("chain"))})
    out["reason"] = verdict.get("reason")
    ufw_answer = verdict.get("ufw") or {}
    zone_answer = verdict.get("firewalld") or {}
    if ufw_answer.get("by") in ("rule", "default"):
        out["layer"] = "ufw"
        out["ufw"] = {k: ufw_answer.get(k) for k in ("by", "rule", "rule_text", "action", "default_policy", "text")}
        if ufw_answer.get("by") == "rule":
            out["text"] = "ufw rule %s: %s" % (ufw_answer.get("rule"), ufw_answer.get("rule_text") or out.get("text"))
        else:
            out["text"] = "ufw default incoming policy: %s (%s)" % (ufw_answer.get("default_policy"), out.get("text"))
    elif (zone_answer.get("zone") or zone_answer.get("zone_from") == "undecided") and not zone_answer.get("error") \
            and _firewalld_decided(out, fw_facts):
        # The loaded ruleset outranks firewalld's configuration model: when the deciding rule sits in
        # a zone's own chain, that is the zone that handled the packet (the model may not know how:
        # an ipset source, a binding it did not read).
        rule_zone = _firewalld_zone(out, fw_facts)
        model_zone = zone_answer.get("zone")
        out["layer"] = "firewalld"
        out["zone"] = rule_zone or model_zone
        out["zone_from"] = zone_answer.get("zone_from")
        out["zone_reason"] = zone_answer.get("zone_reason")
        out["zone_target"] = zone_answer.get("target")
        out["zone_binding"] = zone_answer.get("zone_binding")
        out["zone_next"] = zone_answer.get("zone_next")
        conflicts = []
        if model_zone is None:
            # the source address alone cannot tell the zone (an ipset that also needs a port or a MAC address):
            # the zone whose chain decided is the one, and the binding that sent it there is that candidate's
            cand = [c for c in zone_answer.get("zone_candidates") or [] if c.get("zone") == rule_zone]
            out["zone_from"] = "ruleset"
            out["zone_binding"] = cand[0].get("binding") if cand else None
            out["zone_next"] = None
            out["zone_target"] = None
            out["zone_reason"] = ("the deciding rule is in chain %s of zone %s; firewalld's configuration alone cannot tell "
                                  "(%s)" % (out.get("chain"), rule_zone, zone_answer.get("zone_reason")) if rule_zone
                                  else zone_answer.get("zone_reason"))
            out["text"] = "firewalld zone %s (%s) does not allow it: %s" % (
                rule_zone or "(not known)", out["zone_reason"], out.get("text"))
        elif rule_zone and rule_zone != model_zone:
            out["zone_from"] = "ruleset"
            out["zone_reason"] = "the deciding rule is in chain %s of zone %s" % (out.get("chain"), rule_zone)
            out["zone_binding"] = out["zone_next"] = None
            conflicts.append("firewalld's zone model puts the packet in zone %s (%s), but the loaded ruleset decided "
                             "it in zone %s's chain %s: the ruleset is followed" % (
                                 model_zone, zone_answer.get("zone_reason"), rule_zone, out.get("chain")))
            out["text"] = "firewalld zone %s (%s) does not allow it: %s" % (rule_zone, out["zone_reason"], out.get("text"))
        elif zone_answer.get("allowed") and zone_answer.get("agrees_with_ruleset") is False:
            # the zone allows the port, yet a rule of the zone (a rich rule, an icmp block) blocks it
            out["text"] = "firewalld zone %s allows %s (%s), but its rule in chain %s blocks it first: %s" % (
                out["zone"], "the port", ", ".join(zone_answer.get("allowed_by") or []), out.get("chain"), out.get("text"))
            conflicts.append(zone_answer.get("disagreement"))
        else:
            out["text"] = "firewalld zone %s (%s) does not allow it: %s" % (
                out["zone"], zone_answer.get("zone_reason") or "zone from %s" % zone_answer.get("zone_from"), out.get("text"))
        if zone_answer.get("agrees_with_ruleset") is False:
            out["zone_disagreement"] = zone_answer.get("disagreement")
        if conflicts:
            out["conflicts"] = [c for c in conflicts if c]
    elif fw_facts is not None and _is_ufw(out, fw_facts):
        out["layer"] = "ufw"
        if out.get("policy"):
            what = "deny" if verdict.get("verdict") == "drop" else "reject"
            out["text"] = "ufw default incoming policy: %s (%s)" % (what, out.get("text"))
    elif fw_facts is not None and _is_firewalld(out, fw_facts):
        out["layer"] = "firewalld"
        out["zone"] = _firewalld_zone(out, fw_facts)
    return out


def _rule_position(index, host, origin):
    """1-based position of an iptables rule within its chain (for ``iptables -I CHAIN N``)."""
    ruleset = _ruleset_of(index.facts(host).get("firewall"))
    for table in (ruleset or {}).get("tables", []):
        if table.get("name") != origin.get("table") or table.get("backend") != origin.get("backend"):
            continue
        for chain in table.get("chains", []):
            if chain.get("name") != origin.get("chain"):
                continue
            for pos, rule in enumerate(chain.get("rules", []), 1):
                if (rule.get("origin") or {}).get("line") == origin.get("line"):
                    return pos
    return None


def firewall_fix(index, host, culprit, flow, path):
    """The smallest change that lets exactly this flow through the culprit's layer, tried on the
    saved facts first (:mod:`.verify`): a change that would not let the packet through is not
    proposed; the finding says what still blocks it instead."""
    fix = _firewall_fix(index, host, culprit, flow, path)
    if fix.get("manual") or not fix.get("commands"):
        return fix
    result = check(index, host, fix, flow, path)
    fix["checked"] = {"passes": result["passes"], "reason": result["reason"]}
    if result["passes"] is False:
        after = result["after"] or {}
        rule = after.get("rule") or {}
        blocked_by = rule.get("text") or after.get("reason")
        proposal = "; ".join(c["command"] for c in fix["commands"])
        hint, commands = _rich_hint(index, host, culprit, flow)
        out = manual("%s would not let it through: %s still %ss it%s" % (
            proposal, "rule '%s' (%s %s)" % (rule.get("text"), rule.get("table"), rule.get("chain")) if rule else "the rules",
            after.get("verdict"), hint), host, commands)
        out["checked"] = fix["checked"]
        out["rejected"] = {"commands": fix["commands"], "blocked_by": blocked_by}
        return out
    return fix


def _rich_hint(index, host, culprit, flow):
    """The firewalld rich rule of the culprit's zone that likely blocks the flow, as a removal command."""
    zone = culprit.get("zone")
    fwd = (index.facts(host).get("firewall") or {}).get("firewalld") or {}
    config = fwd.get("runtime") or fwd.get("permanent") or {}
    settings = (config.get("zones") or {}).get(zone) or {}
    port = 'port="%s"' % flow["port"]
    for rich in settings.get("rich_rules") or []:
        if port in rich and ("reject" in rich or "drop" in rich) and (
                'address="' not in rich or (flow.get("source_address") or "") in rich or "/" in rich):
            return ("; the rich rule of zone %s that blocks it is %s: remove it (or narrow it)" % (zone, rich),
                    ["firewall-cmd --zone=%s --remove-rich-rule='%s'" % (zone, rich),
                     "firewall-cmd --permanent --zone=%s --remove-rich-rule='%s'" % (zone, rich)])
    return "", []


def _firewall_fix(index, host, culprit, flow, path):
    port, proto = flow["port"], flow["protocol"]
    spec = "%s/%s" % (port, proto)
    fw_facts = index.facts(host).get("firewall") or {}
    origin = {k: culprit.get(k) for k in ("backend", "family", "table", "chain", "handle", "line", "text")}
    if culprit.get("layer") == "firewalld" or (_is_firewalld(origin, fw_facts) and not _is_ufw(origin, fw_facts)):
        zone = culprit.get("zone") or _firewalld_zone(origin, fw_facts) or "public"
        binding = _ipset_binding(culprit, fw_facts, zone)
        if binding and flow.get("source_address") and path == "input":
            return _ipset_fix(host, culprit, flow, zone, binding, fw_facts)
        cmds = ["firewall-cmd --zone=%s --add-port=%s" % (zone, spec),
                "firewall-cmd --permanent --zone=%s --add-port=%s" % (zone, spec)]
        fwd = fw_facts.get("firewalld") or {}
        if fwd and fwd.get("running") is None and str(fwd.get("read_with") or "").startswith("offline"):
            # the daemon owns its name but did not answer: nothing can change it now, and its zones were read from
            # the files, so the zone is the configured one, not necessarily the one at work
            return manual("firewalld on %s did not answer (%s): restart it, then open %s in zone %s (runtime and "
                          "permanent) if a new diagnosis still finds it closed" % (
                              host, fwd.get("reason") or "not known why", spec, zone),
                          host, ["systemctl restart firewalld"] + cmds)
        return {"summary": "open %s in firewalld zone %s on %s (runtime and permanent)" % (spec, zone, host),
                "commands": [{"host": host, "command": c} for c in cmds], "manual": False,
                "open_ports": {"host": host, "backend": "firewalld", "zone": zone, "ports": [spec]}}
    if culprit.get("layer") == "ufw" or _is_ufw(origin, fw_facts):
        cmd = "ufw allow from %s to any port %s proto %s" % (flow["source_address"], port, proto) \
            if flow.get("source_address") else "ufw allow %s" % spec
        return {"summary": "allow %s in ufw on %s" % (spec, host), "commands": [{"host": host, "command": cmd}],
                "manual": False, "open_ports": {"host": host, "backend": "ufw", "ports": [spec],
                                                "source": flow.get("source_address")}}
    backend = origin.get("backend") or ""
    match_dst = " %s daddr %s" % ("ip6" if ":" in flow["address"] else "ip", flow["address"]) \
        if path in ("forward", "output") else ""
    if backend == "nftables":
        fam, table, chain = origin.get("family"), origin.get("table"), origin.get("chain")
        if origin.get("handle") is not None and not culprit.get("policy"):
            cmd = "nft insert rule %s %s %s position %s%s %s dport %s accept" % (
                fam, table, chain, origin["handle"], match_dst, proto, port)
        else:
            cmd = "nft add rule %s %s %s%s %s dport %s accept" % (fam, table, chain, match_dst, proto, port)
        return {"summary": "accept %s before the rule that blocks it (%s %s %s) on %s" % (spec, fam, table, chain, host),
                "commands": [{"host": host, "command": cmd}], "manual": False,
                "open_ports": {"host": host, "backend": "nftables", "ports": [spec], "family": fam, "table": table,
                               "chain": chain, "before_handle": origin.get("handle")}}
    if backend.startswith("iptables"):
        tool = "iptables-legacy" if backend == "iptables-legacy" else "iptables"
        if origin.get("family") in ("ip6", "ipv6"):
            tool = tool.replace("iptables", "ip6tables")
        pos = _rule_position(index, host, origin) if not culprit.get("policy") else None
        where = "%s %d" % (origin.get("chain"), pos) if pos else "%s" % origin.get("chain")
        dst = " -d %s" % flow["address"] if path in ("forward", "output") else ""
        cmd = "%s -t %s -I %s%s -p %s --dport %s -j ACCEPT" % (tool, origin.get("table") or "filter", where, dst, proto, port)
        return {"summary": "accept %s before the rule that blocks it (%s chain %s) on %s" % (spec, tool, origin.get("chain"), host),
                "commands": [{"host": host, "command": cmd}], "manual": False,
                "open_ports": {"host": host, "backend": backend, "ports": [spec], "table": origin.get("table"),
                               "chain": origin.get("chain"), "position": pos}}
    return {"summary": "allow %s on %s (the blocking layer is not one the collection can change)" % (spec, host),
            "commands": [], "manual": True, "open_ports": None}


def _ipset_binding(culprit, fw_facts, zone):
    """The ipset that sends the flow's source to ``zone`` (``{ipset, entry, type}``; ``entry`` None when the
    zone model could not tell it), or None when the zone is not chosen through an ipset."""
    binding = culprit.get("zone_binding") or {}
    if binding.get("kind") == "ipset":
        return binding
    if culprit.get("zone_from") != "ruleset":
        return None
    # the loaded ruleset decided in this zone while the zone model could not say how: an ipset source of the zone
    fwd = (fw_facts or {}).get("firewalld") or {}
    config = fwd.get("runtime") or fwd.get("permanent") or {}
    sets = [s[len("ipset:"):] for s in ((config.get("zones") or {}).get(zone) or {}).get("sources") or []
            if str(s).startswith("ipset:")]
    if not sets:
        return None
    return {"kind": "ipset", "value": "ipset:" + sets[0], "ipset": sets[0] if len(sets) == 1 else None, "entry": None,
            "ipsets": sets}


def _quote_rule(rule):
    return "'%s'" % rule.replace("'", "'\\''")


def _ipset_fix(host, culprit, flow, zone, binding, fw_facts):
    """The fix when the source reaches ``zone`` through an ipset: the safe options, the first the default.

    (a) a rich rule in the zone for this source and port only (default): it opens nothing to anybody else;
    (b) the port in the zone: it opens it to every source of the zone, every member of the ipset among them;
    (c) the source's entry out of the ipset: the source then falls to the next zone (named, with what that
    zone does with the port), and so does every other address of the entry."""
    port, proto, src = flow["port"], flow["protocol"], flow["source_address"]
    spec = "%s/%s" % (port, proto)
    family = "ipv6" if ":" in src else "ipv4"
    rule = 'rule family="%s" source address="%s" port port="%s" protocol="%s" accept' % (family, src, port, proto)
    fwd = (fw_facts or {}).get("firewalld") or {}
    name, entry = binding.get("ipset"), binding.get("entry")
    via = ("ipset %s (entry %s)" % (name, entry) if name and entry else "ipset %s" % name if name
           else "one of its ipsets (%s)" % ", ".join(binding.get("ipsets") or []))
    rich_cmds = ["firewall-cmd --zone=%s --add-rich-rule=%s" % (zone, _quote_rule(rule)),
                 "firewall-cmd --permanent --zone=%s --add-rich-rule=%s" % (zone, _quote_rule(rule))]
    rich = {"option": "rich_rule", "default": True,
            "summary": "allow %s from %s only, with a rich rule in firewalld zone %s on %s (runtime and permanent)" % (
                spec, src, zone, host),
            "why": "it opens %s to %s alone: every other source zone %s handles stays as it is" % (spec, src, zone),
            "commands": [{"host": host, "command": c} for c in rich_cmds], "manual": False,
            "open_ports": {"host": host, "backend": "firewalld", "zone": zone, "ports": [spec], "source": src,
                           "rich_rules": [rule]}}
    config = fwd.get("runtime") or fwd.get("permanent") or {}
    settings = (config.get("zones") or {}).get(zone) or {}
    others = [s for s in settings.get("sources") or [] if s != binding.get("value")] + \
        ["interface %s" % i for i in settings.get("interfaces") or []]
    members = ((config.get("ipsets") or {}).get(name) or {}).get("entries") if name else None
    port_cmds = ["firewall-cmd --zone=%s --add-port=%s" % (zone, spec), "firewall-cmd --permanent --zone=%s --add-port=%s" % (zone, spec)]
    zone_port = {"option": "zone_port", "default": False,
                 "summary": "open %s in firewalld zone %s on %s (runtime and permanent)" % (spec, zone, host),
                 "why": "it opens %s to every source of zone %s: every member of ipset %s%s%s, not only %s" % (
                     spec, zone, name or "(its ipsets)",
                     " (%d entr%s: %s)" % (len(members), "y" if len(members) == 1 else "ies", ", ".join(members[:5]) +
                                           (", ..." if len(members) > 5 else "")) if members else "",
                     " and %s" % ", ".join(others) if others else "", src),
                 "commands": [{"host": host, "command": c} for c in port_cmds], "manual": False,
                 "open_ports": {"host": host, "backend": "firewalld", "zone": zone, "ports": [spec]}}
    options = [rich, zone_port]
    if name and entry:
        nxt = culprit.get("zone_next") or {}
        drop_cmds = ["firewall-cmd --ipset=%s --remove-entry=%s" % (name, entry)]
        permanent = ((fwd.get("permanent") or {}).get("ipsets") or {}).get(name) or {}
        if entry in (permanent.get("entries") or []):
            drop_cmds.append("firewall-cmd --permanent --ipset=%s --remove-entry=%s" % (name, entry))
        why = "%s then falls to zone %s (%s)" % (src, nxt.get("zone") or "?", nxt.get("reason") or "not known")
        if nxt.get("zone") and (config.get("zones") or {}).get(nxt["zone"]) is not None:
            packet = {"family": family, "proto": proto, "src": src, "dst": flow.get("address"), "dport": int(port)}
            there = fw_zones.zone_answer(dict(fwd, running=True), packet, zone=nxt["zone"])
            why += ", which %s" % ("allows %s: %s" % (spec, ", ".join(there["allowed_by"])) if there["verdict"] == "accept"
                                   else "does not allow %s either: the flow stays blocked" % spec)
        if entry.split("/")[0] != src or ("/" in entry and entry.split("/")[1] not in ("32", "128")):
            why += "; entry %s is more than %s: every address of it leaves ipset %s" % (entry, src, name)
        users = sorted(z for z, zs in (config.get("zones") or {}).items()
                       if any('ipset="%s"' % name in r for r in zs.get("rich_rules") or []))
        if users:
            why += "; the rich rules of zone%s %s that use ipset %s change too" % ("s" if len(users) > 1 else "", ", ".join(users), name)
        options.append({"option": "ipset_entry", "default": False,
                        "summary": "remove %s from ipset %s on %s (runtime%s)" % (
                            entry, name, host, " and permanent" if len(drop_cmds) > 1 else ""),
                        "why": why, "commands": [{"host": host, "command": c} for c in drop_cmds], "manual": True,
                        "open_ports": None})
    return {"summary": "%s: %s reaches zone %s through %s, so opening %s in the zone would open it to every member of "
                       "the ipset (the default of %d options: see alternatives)" % (rich["summary"], src, zone, via, spec, len(options)),
            "commands": rich["commands"], "manual": False, "open_ports": rich["open_ports"], "alternatives": options}


def manual(summary, host=None, commands=()):
    return {"summary": summary, "commands": [{"host": host, "command": c} for c in commands], "manual": True,
            "open_ports": None}
