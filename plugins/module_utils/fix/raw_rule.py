# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The minimal accept rule in raw nftables or iptables, placed right before the rule that blocks a port.

The live ruleset is read into the rule model (nftables JSON and every ``iptables-save`` variant) and a
new incoming packet for each port is walked through it with the ``Evaluator``.  When it is dropped
or rejected, an accept rule for exactly that port (and source, when given) is inserted right before
the deciding rule (``nft insert rule ... position HANDLE`` / ``iptables -I CHAIN N``), or appended to
the chain when the chain's policy decided.  The packet is walked again on the predicted model until
it is accepted (another base chain may block it too).  Ports the ruleset already accepts are left
alone, which makes the run idempotent.

Every rule added carries the comment ``netdiag.reachability open_ports``; ``state=absent`` removes
only such rules.  Before anything runs, the management connection is walked through the model
before and after the change; a change that stops accepting it is refused.  Rules added this way
are runtime only: nothing here writes /etc/nftables.conf or /etc/iptables/rules.v4.
"""

from __future__ import annotations

import copy
import ipaddress

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    InputError, MissingDependency, NetdiagError)
from ansible_collections.netdiag.reachability.plugins.module_utils.fix.guard import WouldCutManagement
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import change_request, format_port_spec
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import iptables as ipt
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import model as rules_model
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import nftables as nft
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator

COMMENT = "netdiag.reachability open_ports"
BACKENDS = ("nftables", "iptables-nft", "iptables-legacy")
MAX_INSERTS = 8


def _manager(ruleset, backend, family, table_name, chain_name):
    """firewalld or ufw when they own the table that holds the deciding rule, else None."""
    if table_name == "firewalld" or str(chain_name or "").endswith("_ZONES"):
        return "firewalld"
    if str(chain_name or "").startswith(("ufw-", "ufw6-")):
        return "ufw"
    for table in ruleset["tables"]:
        if table["backend"] == backend and table["family"] == family and table["name"] == table_name:
            names = [c["name"] for c in table["chains"]]
            if any(n.startswith(("ufw-", "ufw6-")) for n in names):
                return "ufw"
            if any(n.endswith("_ZONES") or n.endswith("_direct") for n in names):
                return "firewalld"
    return None


class RawRuleError(NetdiagError):
    """nft/iptables refused a command, or the ruleset cannot be changed as asked."""


def normalize_request(backend, ports, state="present", source=None, address=None, forward_to=None):
    """``forward_to``: the flow is forwarded by this host (a router) to that address: the packet walks the forward
    path and the accept rule matches that destination (and ``source`` when given)."""
    if backend not in BACKENDS:
        raise InputError("invalid backend %r: expected one of %s" % (backend, ", ".join(BACKENDS)))
    specs, src = change_request(ports, state, source)
    if address is not None:
        try:
            address = str(ipaddress.ip_address(str(address).strip()))
        except ValueError:
            raise InputError("invalid address %r (expected this host's IP address)" % (address,))
    if forward_to is not None:
        try:
            forward_to = str(ipaddress.ip_address(str(forward_to).strip()))
        except ValueError:
            raise InputError("invalid forward_to %r (expected the address the forwarded flow goes to)" % (forward_to,))
        if src and (":" in src) != (":" in forward_to):
            raise InputError("source %s and forward_to %s are not of the same address family" % (src, forward_to))
    family = "ipv6" if (src and ":" in src) or (address and ":" in address) or (forward_to and ":" in forward_to) else "ipv4"
    return {"backend": backend, "ports": specs, "state": state, "source": src, "address": address, "family": family,
            "forward_to": forward_to}


# --------------------------------------------------------------------------- reading

_run = ipt.run_command  # the same command runner as the iptables reader


def read_ruleset():
    """Every layer the kernel walks, as one model (nftables + iptables variants)."""
    nft_rs = None
    try:
        nft_rs, dummy = nft.read_nftables()
    except MissingDependency:
        nft_rs = None
    try:
        ipt_rs = [ipt.read_iptables()]
    except MissingDependency:
        ipt_rs = []
    if nft_rs is None and not ipt_rs:
        raise MissingDependency("nft or iptables-save", package="nftables")
    return rules_model.combine(nft_rs, ipt_rs)


def route_interface(address, run=None):
    """The interface a packet from ``address`` arrives on (``ip route get``), or None."""
    run = run or _run
    got = run(["ip", "-o", "route", "get", address]) if address else run(["ip", "-o", "route", "show", "default"])
    if not got or got[0] != 0:
        return None
    words = got[1].split()
    return words[words.index("dev") + 1] if "dev" in words else None


# --------------------------------------------------------------------------- the model side

def _packet(request, first, proto, iif, oif=None):
    src = request["source"] or ("0.0.0.0" if request["family"] == "ipv4" else "::")
    if "/" in src:
        src = src.split("/")[0]
    pkt = {"family": request["family"], "proto": proto, "src": src, "sport": 40000, "dport": first, "ct_state": "new"}
    if request.get("forward_to"):
        pkt["dst"] = request["forward_to"]
    elif request["address"]:
        pkt["dst"] = request["address"]
    if iif:
        pkt["iif"] = iif
    if oif and request.get("forward_to"):
        pkt["oif"] = oif
    return pkt


def _path(request):
    return "forward" if request.get("forward_to") else "input"


def _find_chain(ruleset, backend, family, table, chain):
    for t in ruleset["tables"]:
        if t["backend"] == backend and t["family"] == family and t["name"] == table:
            for c in t["chains"]:
                if c["name"] == chain:
                    return t, c
    return None, None


def _rule_args(request, first, last, proto):
    args = []
    if request["source"]:
        args += ["-s", request["source"]]
    if request.get("forward_to"):
        args += ["-d", request["forward_to"]]
    ports = str(first) if first == last else "%d:%d" % (first, last)
    return args + ["-p", proto, "-m", proto, "--dport", ports, "-m", "comment", "--comment", COMMENT, "-j", "ACCEPT"]


def _nft_text(request, first, last, proto, family):
    parts = []
    if request["source"]:
        parts.append("%s saddr %s" % ("ip6" if ":" in request["source"] else "ip", request["source"]))
    if request.get("forward_to"):
        parts.append("%s daddr %s" % ("ip6" if ":" in request["forward_to"] else "ip", request["forward_to"]))
    parts.append("%s dport %s" % (proto, first if first == last else "%d-%d" % (first, last)))
    return " ".join(parts) + ' accept comment "%s"' % COMMENT


def _tool(backend, family):
    base = "iptables" if family == "ipv4" else "ip6tables"
    return "%s-%s" % (base, "legacy" if backend == "iptables-legacy" else "nft")


def _is_ours(rule):
    origin = rule.get("origin") or {}
    return origin.get("comment") == COMMENT or ('comment "%s"' % COMMENT) in (origin.get("text") or "")


def _rule_ports(rule):
    proto, ports = None, []
    for m in rule.get("matches") or []:
        if m.get("key") == "proto" and m.get("values"):
            proto = m["values"][0]
        if m.get("key") == "dport":
            for v in m.get("values") or []:
                ports.append(tuple(v) if isinstance(v, list) else (v, v))
            # nftables says "tcp dport 80": the protocol is the port match's own requirement
            required = (m.get("requires") or {}).get("proto") or []
            if proto is None and len(required) == 1:
                proto = required[0]
    return proto, ports


def plan_present(ruleset, request, iif=None, hints=None, oif=None):
    """Inserts needed so that every requested port is accepted: (inserts, predicted ruleset, notes)."""
    model = copy.deepcopy(ruleset)
    inserts, notes = [], []
    hints = hints or {}
    locals_ = [request["address"]] if request["address"] else None
    for first, last, proto in request["ports"]:
        spec = format_port_spec(first, last, proto)
        for dummy in range(MAX_INSERTS + 1):
            result = Evaluator(model).evaluate(_packet(request, first, proto, iif, oif), path=_path(request),
                                               local_addresses=locals_)
            verdict = result["verdict"]
            if verdict == "accept":
                break
            if verdict == "indeterminate":
                raise RawRuleError("cannot tell what the ruleset does with %s: %s" % (spec, result.get("reason")))
            if len(inserts) >= MAX_INSERTS:
                raise RawRuleError("%s is still blocked after %d inserted rules; giving up" % (spec, MAX_INSERTS))
            origin = result.get("rule")
            where = origin or result.get("chain") or {}
            backend = where.get("backend")
            table_name, chain_name, family = where.get("table"), where.get("chain"), where.get("family")
            manager = _manager(model, backend, family, table_name, chain_name)
            if manager:
                raise RawRuleError("%s is blocked by %s (%s %s %s: %s); change it with backend %s, not %s"
                                   % (spec, manager, family, table_name, chain_name,
                                      (origin or {}).get("text") or "policy", manager, request["backend"]))
            if backend != request["backend"]:
                raise RawRuleError("%s is blocked by a %s rule (%s %s %s: %s), not by %s: use backend %s"
                                   % (spec, backend, family, table_name, chain_name,
                                      (origin or {}).get("text") or "chain policy", request["backend"], backend))
            for key in ("table", "chain"):
                if hints.get(key) and hints[key] != where.get(key):
                    notes.append("%s: the blocking rule is now in %s %s, not in %s %s as given" % (
                        spec, key, where.get(key), key, hints[key]))
            table, chain = _find_chain(model, backend, family, table_name, chain_name)
            if chain is None:
                raise RawRuleError("%s: chain %s %s %s not found in the ruleset" % (spec, family, table_name, chain_name))
            index = len(chain["rules"])
            if origin:
                for i, rule in enumerate(chain["rules"]):
                    if rule["origin"] == origin or (rule["origin"].get("handle", "x") == origin.get("handle", "y")
                                                    and origin.get("handle") is not None) \
                            or (rule["origin"].get("line", "x") == origin.get("line", "y") and origin.get("line") is not None):
                        index = i
                        break
            ipt_family = "ipv6" if family == "ip6" else ("ipv4" if family == "ip" else request["family"])
            matches, statements, verdict_new, comment = ipt.convert_rule(_rule_args(request, first, last, proto), ipt_family)
            if backend == "nftables":
                text = _nft_text(request, first, last, proto, family)
                if origin and origin.get("handle") is not None:
                    cmd = ["nft", "insert", "rule", family, table_name, chain_name, "position", str(origin["handle"])]
                else:
                    cmd = ["nft", "add", "rule", family, table_name, chain_name]
                cmd += text.replace('"%s"' % COMMENT, "").split() + ['"%s"' % COMMENT]
            else:
                args = _rule_args(request, first, last, proto)
                text = "-A %s %s" % (chain_name, " ".join('"%s"' % a if " " in a else a for a in args))
                tool = _tool(backend, ipt_family)
                cmd = [tool, "-t", table_name] + (["-I", chain_name, str(index + 1)] if origin else ["-A", chain_name]) + args
            new_rule = {"matches": matches, "statements": statements, "verdict": verdict_new,
                        "origin": {"backend": backend, "family": family, "table": table_name, "chain": chain_name,
                                   "handle": None, "text": text, "comment": comment}}
            chain["rules"].insert(index, new_rule)
            inserts.append({"port": spec, "backend": backend, "family": family, "table": table_name, "chain": chain_name,
                            "before": (origin or {}).get("text") or "policy %s of chain %s" % (verdict, chain_name),
                            "rule": text, "command": cmd})
    return inserts, model, notes


def plan_absent(ruleset, request):
    """Our rules (by comment) for the requested ports and source: (deletes, predicted ruleset)."""
    model = copy.deepcopy(ruleset)
    deletes = []
    wanted = set(request["ports"])
    for table in model["tables"]:
        if table["backend"] != request["backend"]:
            continue
        for chain in table["chains"]:
            keep = []
            mine = []
            for pos, rule in enumerate(chain["rules"], 1):
                proto, ports = _rule_ports(rule)
                src = [m for m in rule["matches"] if m.get("key") == "src"]
                src_ok = (not src and not request["source"]) or (
                    src and request["source"] and str(src[0]["values"][0]).split("/", maxsplit=1)[0] == request["source"].split("/", maxsplit=1)[0])
                dst = [m for m in rule["matches"] if m.get("key") == "dst"]
                want_dst = request.get("forward_to")
                dst_ok = (not dst and not want_dst) or (
                    dst and want_dst and str(dst[0]["values"][0]).split("/", maxsplit=1)[0] == want_dst)
                if _is_ours(rule) and src_ok and dst_ok and any((lo, hi, proto) in wanted for lo, hi in ports):
                    mine.append((pos, rule))
                else:
                    keep.append(rule)
            for pos, rule in sorted(mine, key=lambda item: -item[0]):
                origin = rule["origin"]
                if table["backend"] == "nftables":
                    cmd = ["nft", "delete", "rule", table["family"], table["name"], chain["name"], "handle", str(origin["handle"])]
                else:
                    fam = "ipv6" if table["family"] == "ip6" else "ipv4"
                    cmd = [_tool(table["backend"], fam), "-t", table["name"], "-D", chain["name"], str(pos)]
                deletes.append({"backend": table["backend"], "family": table["family"], "table": table["name"],
                                "chain": chain["name"], "rule": origin.get("text"), "command": cmd})
            chain["rules"] = keep
    return deletes, model


def management_packet(mgmt, iif=None):
    pkt = {"family": "ipv6" if ":" in mgmt["source"] else "ipv4", "proto": "tcp", "src": mgmt["source"],
           "sport": 40000, "dport": int(mgmt["port"]), "ct_state": "new"}
    if mgmt.get("address"):
        pkt["dst"] = mgmt["address"]
    if iif:
        pkt["iif"] = iif
    return pkt


def guard(before, after, mgmt, iif=None):
    """Raise WouldCutManagement when ``after`` no longer accepts what ``before`` accepted."""
    pkt = management_packet(mgmt, iif)
    locals_ = [mgmt["address"]] if mgmt.get("address") else None
    was = Evaluator(before).evaluate(pkt, path="input", local_addresses=locals_)
    now = Evaluator(after).evaluate(pkt, path="input", local_addresses=locals_)
    what = "new ssh connections from %s to port %s/tcp" % (mgmt["source"], mgmt["port"])
    if was["verdict"] == "accept" and now["verdict"] != "accept":
        raise WouldCutManagement("refusing the change: the ruleset would no longer accept %s (after: %s)" % (
            what, now.get("reason")))
    return ["%s: %s before, %s after" % (what, was["verdict"], now["verdict"])]


def _chain_lines(ruleset, chains):
    lines = []
    for table in ruleset["tables"]:
        for chain in table["chains"]:
            key = (table["backend"], table["family"], table["name"], chain["name"])
            if key in chains:
                head = "%s %s %s %s:" % key
                lines += ["%s %s" % (head, r["origin"].get("text")) for r in chain["rules"]]
                if chain.get("policy"):
                    lines.append("%s policy %s" % (head, chain["policy"]))
    return "\n".join(lines) + "\n"


def ensure(request, check_mode=False, management=None, hints=None, reader=None, run=None):
    """Plan, guard and (unless ``check_mode``) apply; return the result dict."""
    reader = reader or read_ruleset
    run = run or _run
    before = reader()
    iif = route_interface(request["source"], run) if request["state"] == "present" else None
    oif = route_interface(request["forward_to"], run) if request["state"] == "present" and request.get("forward_to") else None
    notes = []
    if request["state"] == "present":
        ops, predicted, notes = plan_present(before, request, iif, hints, oif)
    else:
        ops, predicted = plan_absent(before, request)
    checked = []
    if management and ops:
        checked = guard(before, predicted, management, route_interface(management["source"], run))
    chains = {(op["backend"], op["family"], op["table"], op["chain"]) for op in ops}
    after = predicted
    done = []
    if ops and not check_mode:
        for op in ops:
            got = run(op["command"])
            if got is None:
                error = MissingDependency(op["command"][0], package="nftables" if op["command"][0] == "nft" else "iptables")
                error.result = {"changed": bool(done), "commands": list(done)}
                raise error
            if got[0] != 0:
                error = RawRuleError("%s failed (rc=%d): %s" % (" ".join(op["command"]), got[0], (got[2] or got[1]).strip()))
                error.result = {"changed": bool(done), "commands": list(done)}  # what ran before it failed
                raise error
            done.append(" ".join(op["command"]))
        after = reader()
        if request["state"] == "present":
            left, dummy, dummy2 = plan_present(after, request, iif, oif=oif)
            if left:
                notes.append("after the change %s still blocked (something else changed the ruleset?)"
                             % ", ".join(op["port"] for op in left))
    if request["state"] == "present" and ops:
        notes.append("the rules were added to the running ruleset only: save it (e.g. nft list ruleset > "
                     "/etc/nftables.conf, iptables-save > /etc/iptables/rules.v4) to keep them after a reboot")
    specs = ", ".join(format_port_spec(f, last, p) for f, last, p in request["ports"])
    if ops:
        verb = ("would " if check_mode else "") + ("insert" if request["state"] == "present" else "delete")
        if not check_mode:
            verb = verb + "ed" if verb.endswith("t") else verb[:-1] + "ed"
        msg = "%s %d %s rule%s for %s" % (verb, len(ops), request["backend"], "" if len(ops) == 1 else "s", specs)
    elif request["state"] == "present":
        msg = "the ruleset already accepts %s" % specs
    else:
        msg = "no %s rule of this collection for %s" % (request["backend"], specs)
    return {
        "changed": bool(ops),
        "rules": [{k: op.get(k) for k in ("port", "backend", "family", "table", "chain", "rule")} for op in ops],
        "commands": [" ".join(op["command"]) for op in ops],
        "guard": checked,
        "notes": notes,
        "diff": {"before": _chain_lines(before, chains), "after": _chain_lines(after, chains),
                 "before_header": "%s rules, before" % request["backend"],
                 "after_header": "%s rules, after" % request["backend"]},
        "msg": msg,
    }
