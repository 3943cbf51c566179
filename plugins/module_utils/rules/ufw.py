# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ufw: its configuration files -> facts, and a verdict told in ufw's terms.

ufw keeps everything it needs in plain files, which we read instead of running ``ufw``
(that needs root, takes a lock and prints for humans):

- ``/etc/ufw/ufw.conf``: ``ENABLED``, ``LOGLEVEL``;
- ``/etc/default/ufw``: ``DEFAULT_INPUT_POLICY`` / ``OUTPUT`` / ``FORWARD``, ``IPV6``;
- ``/etc/ufw/user.rules`` and ``user6.rules``: one ``### tuple ###`` comment per rule
  (``ACTION PROTO DPORT DST SPORT SRC [DAPP SAPP] DIRECTION[_IFACE]``) followed by the
  iptables lines it generated.  ufw numbers its rules as ``ufw status numbered`` does:
  the IPv4 rules in file order, then the IPv6 ones.

The filtering itself is done by iptables chains (``ufw-user-input`` ...), which the
iptables reader puts into the rule model.  :func:`link_origins` ties every ufw rule to the
rules it generated in that model (per chain, by position), so that :func:`answer` can say
which ufw rule number decided a packet, or that the default policy did.
"""

from __future__ import annotations

import ipaddress

import os
import re

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import is_digits

ROOT = "/"
CONF = "etc/ufw/ufw.conf"
DEFAULTS = "etc/default/ufw"
USER_RULES = (("ipv4", "etc/ufw/user.rules"), ("ipv6", "etc/ufw/user6.rules"))

_POLICY = {"DROP": "deny", "ACCEPT": "allow", "REJECT": "reject"}
_ACTIONS = ("allow", "deny", "reject", "limit")
_TUPLE = re.compile(r"^### tuple ###\s*")
_DIRECTION_WORD = {"in": "incoming", "out": "outgoing", "routed": "routed"}
_USER_CHAIN = re.compile(r"^ufw6?-user-(input|output|forward)$")


def _kv(text):
    """KEY=value lines (shell style, quotes stripped) -> dict."""
    out = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def _policy(value, key, source):
    if value is None:
        return None
    if value.upper() not in _POLICY:
        raise ParseError("invalid %s %r: expected DROP, ACCEPT or REJECT" % (key, value), source=source)
    return _POLICY[value.upper()]


def parse_settings(conf_text, defaults_text, conf_source=CONF, defaults_source=DEFAULTS):
    """ufw.conf + /etc/default/ufw -> {enabled, logging, ipv6, defaults: {incoming, outgoing, routed}}."""
    conf = _kv(conf_text or "")
    defaults = _kv(defaults_text or "")
    enabled = conf.get("ENABLED", "no").lower()
    if enabled not in ("yes", "no"):
        raise ParseError("invalid ENABLED %r: expected yes or no" % conf.get("ENABLED"), source=conf_source)
    level = conf.get("LOGLEVEL", "low").lower()
    if level not in ("off", "on", "low", "medium", "high", "full"):
        raise ParseError("invalid LOGLEVEL %r" % conf.get("LOGLEVEL"), source=conf_source)
    return {
        "enabled": enabled == "yes",
        "logging": level,
        "ipv6": defaults.get("IPV6", "yes").lower() == "yes",
        "defaults": {
            "incoming": _policy(defaults.get("DEFAULT_INPUT_POLICY"), "DEFAULT_INPUT_POLICY", defaults_source),
            "outgoing": _policy(defaults.get("DEFAULT_OUTPUT_POLICY"), "DEFAULT_OUTPUT_POLICY", defaults_source),
            "routed": _policy(defaults.get("DEFAULT_FORWARD_POLICY"), "DEFAULT_FORWARD_POLICY", defaults_source),
        },
    }


def _direction(word):
    """``in`` | ``out`` | ``in_eth0`` | ``in_eth0!out_eth1`` -> (direction, iface_in, iface_out)."""
    base = word.split("_")[0]
    if base not in ("in", "out"):
        raise ValueError("direction %r" % word)
    iface_in = iface_out = None
    if "_" in word:
        for part in word.split("!"):
            kind, _sep, name = part.partition("_")
            if kind == "in":
                iface_in = name
            elif kind == "out":
                iface_out = name
            else:
                raise ValueError("interface %r" % part)
    return base, iface_in, iface_out


def _describe(rule):
    """Roughly the way ``ufw status`` writes a rule: '5432/tcp ALLOW IN 10.200.1.0/24'."""
    v6 = " (v6)" if rule["v6"] else ""
    any_addr = ("::/0", "0.0.0.0/0")
    to = []
    if rule["to"] not in any_addr:
        to.append(rule["to"])
    if rule["app"]:
        to.append(rule["app"])
    elif rule["port"] != "any":
        to.append(rule["port"] + ("" if rule["proto"] == "any" else "/" + rule["proto"]))
    to = " ".join(to) or "Anywhere"
    frm = rule["from"] if rule["from"] not in any_addr else "Anywhere"
    if rule["from_port"] != "any":
        frm += " port %s" % rule["from_port"]
    where = "FWD" if rule["routed"] else rule["direction"].upper()
    on = ""
    if rule["interface_in"] and not rule["routed"]:
        on = " on %s" % rule["interface_in"]
    elif rule["interface_out"] and not rule["routed"]:
        on = " on %s" % rule["interface_out"]
    return "%s%s%s %s %s %s%s" % (to, v6, on, rule["action"].upper(), where, frm, "" if frm != "Anywhere" else v6)


def parse_user_rules(text, family, source="user.rules", first_number=1):
    """One user.rules / user6.rules -> list of ufw rules, numbered from ``first_number``.

    Each rule: {number, action, direction, routed, proto, port, to, from_port, from, app,
    from_app, interface_in, interface_out, v6, comment, text, lines: {chain: [iptables line, ...]}}.
    """
    rules = []
    current = None
    for lineno, raw in enumerate((text or "").splitlines(), 1):
        line = raw.strip()
        if _TUPLE.match(line):
            body = _TUPLE.sub("", line)
            comment = None
            if " comment=" in body:
                body, comment = body.split(" comment=", 1)
                comment = _unhex(comment.strip())
            parts = body.split()
            if len(parts) not in (7, 9) and len(parts) not in (6, 8):
                raise ParseError("malformed ufw tuple %r (%d fields)" % (body, len(parts)), source, lineno)
            action = parts[0]
            routed = action.startswith("route:")
            action = action.split(":", 1)[-1]
            if action.split("_")[0] not in _ACTIONS:  # allow_log, deny_log-all
                raise ParseError("unknown ufw action %r" % parts[0], source, lineno)
            try:
                direction, iface_in, iface_out = _direction(parts[-1] if len(parts) in (7, 9) else "in")
            except ValueError as exc:
                raise ParseError("malformed ufw tuple %r: %s" % (body, exc), source, lineno)
            app = from_app = None
            if len(parts) >= 8:
                app = None if parts[6] == "-" else parts[6].replace("%20", " ")
                from_app = None if parts[7] == "-" else parts[7].replace("%20", " ")
            current = {
                "number": first_number + len(rules), "action": action.split("_")[0],
                "log": action.split("_", 1)[1] if "_" in action else None,
                "direction": direction, "routed": routed, "proto": parts[1], "port": parts[2],
                "to": parts[3], "from_port": parts[4], "from": parts[5], "app": app, "from_app": from_app,
                "interface_in": iface_in, "interface_out": iface_out, "v6": family == "ipv6",
                "comment": comment, "tuple": body, "lines": {}, "source": "%s line %d" % (source, lineno),
            }
            current["text"] = _describe(current)
            rules.append(current)
            continue
        if line.startswith("### END RULES ###"):
            current = None
            continue
        if current is not None and (line.startswith("-A ") or line.startswith("-I ")):
            chain = line.split()[1]
            current["lines"].setdefault(chain, []).append(line)
    return rules


def _unhex(text):
    try:
        return bytes.fromhex(text).decode("utf-8", "replace")
    except ValueError:
        return text


def read_ufw(root=ROOT):
    """Read ufw's files under ``root``.  Returns None when ufw is not installed (no ufw.conf)."""
    conf_path = os.path.join(root, CONF)
    if not os.path.exists(conf_path):
        return None
    texts = {}
    for rel in (CONF, DEFAULTS) + tuple(p for _f, p in USER_RULES):
        path = os.path.join(root, rel)
        if os.path.exists(path):
            with open(path) as fh:
                texts[rel] = fh.read()
    facts = parse_settings(texts.get(CONF), texts.get(DEFAULTS), os.path.join(root, CONF),
                           os.path.join(root, DEFAULTS))
    facts["rules"] = []
    facts["read_from"] = [os.path.join(root, rel) for rel in sorted(texts)]
    for family, rel in USER_RULES:
        if rel in texts:
            facts["rules"].extend(parse_user_rules(texts[rel], family, source=os.path.join(root, rel),
                                                   first_number=len(facts["rules"]) + 1))
    facts["active"] = None
    facts["warnings"] = []
    return facts


def _ref(origin):
    return [origin.get("backend"), origin.get("family"), origin.get("table"), origin.get("chain"),
            origin.get("line", origin.get("handle"))]


def link_origins(facts, ruleset):
    """Attach to every ufw rule the origins of the rules it generated in ``ruleset``.

    The kernel's ``ufw-user-*`` chains hold, in order, the lines of user.rules /
    user6.rules; the k-th line of a chain in the files is the k-th rule of that chain in
    the ruleset.  Sets ``facts['active']`` (ufw's chains are loaded) and warns when the
    files and the loaded chains differ in length (files edited but not reloaded).
    """
    loaded = {}
    for table in ruleset.get("tables") or []:
        if table.get("name") != "filter" or not table.get("backend", "").startswith("iptables"):
            continue
        for chain in table["chains"]:
            if _USER_CHAIN.match(chain["name"]) or chain["name"].startswith("ufw"):
                loaded.setdefault(chain["name"], []).extend(r["origin"] for r in chain["rules"])
    facts["active"] = "ufw-user-input" in loaded or "ufw6-user-input" in loaded
    expected = {}
    for rule in facts["rules"]:
        rule["origins"] = []
        for chain, lines in rule["lines"].items():
            start = expected.get(chain, 0)
            expected[chain] = start + len(lines)
            got = loaded.get(chain, [])[start:start + len(lines)]
            rule["origins"].extend(_ref(o) for o in got)
    if facts["active"]:
        for chain, count in sorted(expected.items()):
            if chain in loaded and len(loaded[chain]) != count:
                facts["warnings"].append(
                    "ufw chain %s holds %d rules but the rules files list %d: the files were changed and not "
                    "reloaded (ufw rule numbers may not match the kernel)" % (chain, len(loaded[chain]), count))
    return facts


def answer(facts, result, path="input"):
    """The evaluator's ``result`` for one packet, told in ufw's terms.

    Returns {"by": "rule"|"default"|"builtin"|"other", "rule": number or None, "rule_text",
    "action", "default_policy", "text"}: the ufw rule (by its ``ufw status numbered`` number)
    that decided, or the default policy of the direction, or one of ufw's built-in rules
    (before.rules / after.rules: loopback, established, ICMP, broadcasts, ...).
    """
    direction = {"input": "incoming", "output": "outgoing", "forward": "routed"}.get(path, path)
    policy = (facts.get("defaults") or {}).get(direction)
    verdict = result.get("verdict")
    out = {"by": "other", "rule": None, "rule_text": None, "action": None, "default_policy": None}
    if verdict == "indeterminate":
        out["text"] = "cannot tell: %s" % result.get("reason")
        return out
    by_ref = {}
    for rule in facts.get("rules") or []:
        for ref in rule.get("origins") or []:
            by_ref[tuple(ref)] = rule
    if verdict == "accept":
        accepted = [a["rule"] for a in result.get("accepts") or [] if a.get("rule")]
        decided = accepted[-1] if accepted else None
    else:
        decided = result.get("rule")
    # the user rule is the deciding rule itself, or the rule that jumped to it (limit chains)
    trace = list(result.get("trace") or [])
    if decided is not None and decided in trace:
        trace = trace[:trace.index(decided) + 1]
    for origin in reversed(trace):
        rule = by_ref.get(tuple(_ref(origin)))
        if rule is not None:
            out.update(by="rule", rule=rule["number"], rule_text=rule["text"], action=rule["action"],
                       text="ufw rule %d (%s) %s the packet" % (rule["number"], rule["text"], _verb(verdict)))
            return out
    chain = (decided or {}).get("chain") or ""
    if decided is None or "skip-to-policy" in chain or re.match(r"^ufw6?-reject-", chain):
        # a base chain's policy, or ufw's chains that implement the default policy
        out.update(by="default", action=policy, default_policy=policy,
                   text="no ufw rule matched: the default %s policy (%s) applies" % (direction, policy))
        return out
    if chain.startswith(("ufw-", "ufw6-")):
        out.update(by="builtin", action=verdict,
                   text="ufw's built-in rule '%s' (chain %s) %s the packet" % (decided.get("text"), chain, _verb(verdict)))
        return out
    out.update(action=verdict, text="decided outside ufw's chains by %s rule '%s' (chain %s)" % (
        decided.get("backend"), decided.get("text"), chain))
    return out


def _verb(verdict):
    return {"accept": "accepts", "drop": "drops", "reject": "rejects"}.get(verdict, "decides")


# --------------------------------------------------------------------------- the configuration model

_ANY = ("0.0.0.0/0", "::/0", "any")


def _ufw_port_match(spec, port):
    if spec == "any":
        return True
    for part in str(spec).split(","):
        lo, dummy, hi = part.partition(":")
        hi = hi or lo
        if is_digits(lo) and is_digits(hi) and int(lo) <= port <= int(hi):
            return True
    return False


def _ufw_addr_match(spec, address):
    if spec in _ANY or address is None:
        return True
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False


def config_verdict(facts, packet):
    """What ufw's configuration (firewall_info's ``ufw`` facts, or a change predicted on them) does
    with a new incoming packet ``{src, dst, proto, dport}``: ``(verdict, reason)``.

    ``verdict`` is ``accept``, ``drop``, ``reject`` or ``unknown`` (an application profile rule was
    reached, which this function does not expand).  Rules are tried in order; the first match decides,
    else the default incoming policy.  ufw disabled filters nothing.
    """
    if not facts.get("enabled"):
        return "accept", "ufw is disabled"
    v6 = ":" in packet["src"]
    for rule in facts.get("rules") or []:
        if rule.get("direction") != "in" or rule.get("routed") or bool(rule.get("v6")) != v6:
            continue
        if rule.get("interface_in"):
            continue  # bound to an interface: cannot tell which one ssh comes in on; not counted as an allow
        if rule.get("app") or rule.get("from_app"):
            return "unknown", "ufw rule %s uses an application profile" % rule.get("text")
        if rule.get("proto") not in ("any", packet["proto"]):
            continue
        if not _ufw_port_match(rule.get("port"), packet["dport"]) or rule.get("from_port") != "any":
            continue
        if not _ufw_addr_match(rule.get("from"), packet["src"]) or not _ufw_addr_match(rule.get("to"), packet.get("dst")):
            continue
        action = rule.get("action")
        verdict = {"allow": "accept", "limit": "accept", "deny": "drop", "reject": "reject"}.get(action, "unknown")
        return verdict, "ufw rule %s" % rule.get("text")
    policy = (facts.get("defaults") or {}).get("incoming") or "deny"
    return {"allow": "accept", "deny": "drop", "reject": "reject"}.get(policy, "drop"), "default incoming policy %s" % policy
