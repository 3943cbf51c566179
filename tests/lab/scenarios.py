# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Random lab scenarios with the truth known by construction (see docs/accuracy.md).

A scenario is one flow, from a source to a destination port, through a path whose layers each
carry at most one fault drawn from a catalogue: the source's egress rules, the router's forward
rules (managed or not), the destination's firewall (nftables, iptables-nft, iptables-legacy,
firewalld on either backend with zones bound by interface, source or ipset, rich rules, ufw) and
the destination's listener (wildcard, loopback, another address, none).  Special scenarios
stand alone: port mappings (DNAT), absent hosts, replies the destination's own routing discards.

The expected cause and culprit follow from how the scenario was built: the first layer on the
path whose fault blocks the packet decides.  :func:`judge` compares a diagnose report with that
truth: each flow is ``right``, ``unknown_ok`` (unknown where the catalogue says the evidence
cannot decide), ``unknown`` (unknown although the evidence decides) or ``wrong``.

    python tests/lab/scenarios.py --seed 7 --count 24      # build, diagnose, judge (root)
    python tests/lab/scenarios.py --seed 7 --count 24 --plan-only   # print the scenarios
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import json
import os
import random
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import netlab  # noqa: E402

FRONT = ipaddress.ip_network("10.200.1.0/24")
BACK = ipaddress.ip_network("10.200.2.0/24")
GW_FRONT, GW_BACK = "10.200.1.1", "10.200.2.1"
ROUTER_ADDRESSES = (GW_FRONT, GW_BACK)
CLIENT = "10.200.1.10"
BASE_PORT = 7000
# firewalld hosts cost a D-Bus daemon and a firewalld each: keep a run's count bounded
MAX_FIREWALLD = 6

# --------------------------------------------------------------------------- the catalogue
# Each entry: (name, layer, weight).  Layers in path order; the first blocking fault decides.

EGRESS = [("egress_nft_drop", 3), ("egress_ipt_reject", 2)]
PATH = [("router_drop", 3), ("router_reject_admin", 2), ("router_reject_net", 1)]
DEST_FW = [
    ("nft_drop", 3), ("nft_reject_rst", 2), ("nft_reject_admin", 2), ("nft_reject_port", 1), ("nft_policy_drop", 2),
    ("ipt_drop", 2), ("ipt_reject_host", 2), ("ipt_legacy_drop", 2), ("ipt_policy_drop", 2),
    ("fwd_default_zone", 2), ("fwd_source_zone", 2), ("fwd_ipset_zone", 2), ("fwd_rich_reject", 2),
    ("fwd_source_zone_open", 1),
    ("ufw_default_deny", 2), ("ufw_deny_rule", 2), ("ufw_reject_rule", 1), ("ufw_allow_rule", 1),
    ("nft_accept", 1),
]
LISTENER = [("listen_any", 6), ("listen_none", 3), ("listen_loopback", 2), ("listen_other_address", 2)]
SPECIAL = [("dnat_wrong_port", 2), ("dnat_ok", 1), ("absent_host", 2), ("absent_on_link", 1), ("reply_blackholed", 1),
           ("rp_filter_strict", 1)]

CAUSES = ("ok", "no_listener", "loopback_only", "wrong_address", "host_firewall", "source_firewall", "path_block",
          "nat", "host_down", "no_route", "unknown")
_LAYERS = (("egress", EGRESS), ("path", PATH), ("dest_fw", DEST_FW), ("listener", LISTENER), ("special", SPECIAL))
FAULTS = dict((n, lay) for lay, entries in _LAYERS for n, w in entries)
# faults of the destination's firewall that let the probe's packet through
NON_BLOCKING_FW = {"fwd_source_zone_open", "ufw_allow_rule", "nft_accept"}
# faults of the destination's firewall that drop without an answer
SILENT_FW = {"nft_drop", "nft_policy_drop", "ipt_drop", "ipt_legacy_drop", "ipt_policy_drop", "ufw_default_deny",
             "ufw_deny_rule"}


def _pick(rng, entries):
    names = [n for n, w in entries]
    weights = [w for n, w in entries]
    return rng.choices(names, weights)[0]


class Scenario(object):
    def __init__(self, sid, index):
        self.sid = sid
        self.index = index
        self.faults = []
        self.port = BASE_PORT + index
        self.proto = "tcp"
        self.source = "client"
        self.source_address = CLIENT
        self.dest = None
        self.address = None
        self.expect = None          # {cause, host, address, marker, layer, zone, chain}
        self.unknown_ok = False
        self.kernel_decides = False  # unknown_ok only without the kernel trace: with it the evidence decides
        self.forbid = []            # fix commands that must not be proposed (substrings)
        self.also_right = []        # other answers the evidence cannot tell from the expected one
        self.note = ""

    def to_dict(self):
        return {"id": self.sid, "faults": self.faults, "source": self.source, "source_address": self.source_address,
                "destination": self.dest, "address": self.address, "port": self.port, "protocol": self.proto,
                "expect": self.expect, "unknown_ok": self.unknown_ok, "kernel_decides": self.kernel_decides,
                "forbid": self.forbid, "note": self.note,
                "also_right": self.also_right}


def generate(seed, count, router_managed=None):
    """(topology, flows, scenarios) for ``count`` scenarios drawn with ``seed``."""
    rng = random.Random(seed)
    if router_managed is None:
        router_managed = rng.random() < 0.7
    topo = {"name": "scenarios-%s" % seed,
            "management": {"subnet": "10.200.255.0/30", "route": "10.200.0.0/16"},
            "networks": [{"name": "front", "subnet": str(FRONT), "gateway": GW_FRONT},
                         {"name": "back", "subnet": str(BACK), "gateway": GW_BACK}],
            "router": {"name": "router", "groups": ["routers"] if router_managed else [], "forward": [], "dnat": []},
            "hosts": [{"name": "client", "network": "front", "address": CLIENT, "groups": ["clients"]}]}
    scenarios = []
    firewalld = 0
    for i in range(count):
        sc = Scenario("s%02d" % (i + 1), i + 1)
        if rng.random() < 0.2:
            kind = _pick(rng, SPECIAL)
            _special(rng, topo, sc, kind, router_managed)
        else:
            egress = _pick(rng, EGRESS) if rng.random() < 0.12 else None
            path = _pick(rng, PATH) if rng.random() < 0.2 else None
            fw = _pick(rng, DEST_FW) if rng.random() < 0.65 else None
            if fw and fw.startswith("fwd_"):
                if firewalld >= MAX_FIREWALLD:
                    fw = "nft_drop"
                else:
                    firewalld += 1
            listener = _pick(rng, LISTENER)
            _layered(rng, topo, sc, egress, path, fw, listener, router_managed)
        scenarios.append(sc)
    flows = [{"name": sc.sid, "from": sc.source, "to": sc.address if sc.dest is None else sc.dest,
              "ports": ["%s/%s" % (sc.port, sc.proto)], "expect": "open" if sc.expect["cause"] == "ok" else "closed"}
             for sc in scenarios]
    return topo, flows, scenarios


def _marker(sc):
    return "scn-%s" % sc.sid


def _dest_host(topo, sc):
    name = sc.sid
    host = {"name": name, "network": "back", "address": str(BACK.network_address + 20 + sc.index),
            "groups": ["servers"], "listeners": []}
    topo["hosts"].append(host)
    sc.dest, sc.address = name, host["address"]
    return host


def _layered(rng, topo, sc, egress, path, fw, listener, router_managed):
    if fw in ("ufw_default_deny", "ufw_deny_rule", "ufw_reject_rule", "ufw_allow_rule") or fw and fw.startswith("fwd_"):
        sc.proto = "tcp"
    else:
        sc.proto = "udp" if rng.random() < 0.15 and listener != "listen_other_address" else "tcp"
    host = _dest_host(topo, sc)
    sc.faults = [f for f in (egress, path, fw, listener) if f]
    # build every layer (the later ones stay in place behind the one that decides)
    truths = []
    if egress:
        truths.append(_egress(topo, sc, egress))
    if path:
        truths.append(_path(topo, sc, path, router_managed))
    if fw:
        truths.append(_dest_firewall(rng, host, sc, fw))
    truths.append(_listener(host, sc, listener))
    blocking = [t for t in truths if t is not None]
    sc.expect = blocking[0]
    if path == "router_drop" and not router_managed and len(blocking) > 1 and fw in SILENT_FW:
        # silence either way: a destination rule that drops is as true an answer as the unmanaged router
        sc.also_right.append(blocking[1])
    if sc.proto == "udp" and sc.expect["cause"] in ("host_firewall", "path_block", "source_firewall") \
            and sc.expect.get("silent"):
        # a dropped datagram and a service that does not answer look alike; the rules read decide
        pass


def _egress(topo, sc, kind):
    name = "e" + sc.sid[1:]
    addr = str(FRONT.network_address + 20 + sc.index)
    marker = _marker(sc)
    if kind == "egress_nft_drop":
        ruleset = ("table inet egress {\n  chain output {\n    type filter hook output priority filter; policy accept;\n"
                   "    ip daddr %s %s dport %d drop comment \"%s\"\n  }\n}\n" % (sc.address, sc.proto, sc.port, marker))
        fw = {"kind": "nftables", "ruleset": ruleset}
    else:
        fw = {"kind": "iptables", "variant": "nft", "rules": (
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A OUTPUT -d %s/32 -p %s -m %s --dport %d -m comment --comment %s -j REJECT\nCOMMIT\n"
            % (sc.address, sc.proto, sc.proto, sc.port, marker))}
    topo["hosts"].append({"name": name, "network": "front", "address": addr, "groups": ["clients"], "firewall": fw})
    sc.source, sc.source_address = name, addr
    return {"cause": "source_firewall", "host": name, "marker": marker}


def _path(topo, sc, kind, router_managed):
    marker = _marker(sc)
    match = "ip daddr %s %s dport %d" % (sc.address, sc.proto, sc.port)
    if kind == "router_drop":
        rule = "%s drop" % match
    elif kind == "router_reject_admin":
        rule = "%s reject with icmp type admin-prohibited" % match
    else:
        rule = "%s reject with icmp type net-prohibited" % match
    topo["router"]["forward"].append({"comment": marker, "rule": rule})
    if router_managed:
        return {"cause": "path_block", "host": "router", "marker": marker}
    if kind == "router_drop":
        # an unmanaged router that drops: nothing on the wire names it; its address may be named as the hop
        sc.unknown_ok = True
        sc.note = "unmanaged router drops: the wire cannot tell it from a destination that discards"
        return {"cause": "path_block", "address": ROUTER_ADDRESSES, "unmanaged": True}
    return {"cause": "path_block", "address": ROUTER_ADDRESSES, "unmanaged": True}


def _nft_input(rule_lines, policy="accept", chain="input"):
    return ("table inet filter {\n  chain %s {\n    type filter hook input priority filter; policy %s;\n%s  }\n}\n"
            % (chain, policy, "".join("    %s\n" % r for r in rule_lines)))


def _ipt(rules, policy="ACCEPT"):
    return ("*filter\n:INPUT %s [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n%sCOMMIT\n"
            % (policy, "".join("%s\n" % r for r in rules)))


def _dest_firewall(rng, host, sc, kind):
    marker = _marker(sc)
    p, proto = sc.port, sc.proto
    dest = sc.dest
    hit = {"cause": "host_firewall", "host": dest, "marker": marker}
    if kind == "nft_accept":
        host["firewall"] = {"kind": "nftables", "ruleset": _nft_input([
            "%s dport %d accept comment \"%s\"" % (proto, p, marker), "tcp dport 22 accept"], policy="drop")}
        return None
    if kind.startswith("nft_") and kind != "nft_policy_drop":
        action = {"nft_drop": "drop", "nft_reject_rst": "reject with tcp reset" if proto == "tcp" else "reject",
                  "nft_reject_admin": "reject with icmpx type admin-prohibited",
                  "nft_reject_port": "reject with icmpx type port-unreachable"}[kind]
        host["firewall"] = {"kind": "nftables", "ruleset": _nft_input([
            "%s dport %d %s comment \"%s\"" % (proto, p, action, marker)])}
        return hit
    if kind == "nft_policy_drop":
        chain = "in_%s" % sc.sid
        host["firewall"] = {"kind": "nftables", "ruleset": _nft_input(
            ["ct state established,related accept", "iifname \"lo\" accept", "tcp dport 22 accept"],
            policy="drop", chain=chain)}
        return {"cause": "host_firewall", "host": dest, "chain": chain, "policy": True}
    if kind in ("ipt_drop", "ipt_reject_host", "ipt_legacy_drop"):
        target = "REJECT --reject-with icmp-host-prohibited" if kind == "ipt_reject_host" else "DROP"
        host["firewall"] = {"kind": "iptables", "variant": "legacy" if kind == "ipt_legacy_drop" else "nft",
                            "rules": _ipt(["-A INPUT -p %s -m %s --dport %d -m comment --comment %s -j %s"
                                           % (proto, proto, p, marker, target)])}
        return hit
    if kind == "ipt_policy_drop":
        host["firewall"] = {"kind": "iptables", "variant": rng.choice(["nft", "legacy"]), "rules": _ipt([
            "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "-A INPUT -i lo -j ACCEPT",
            "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"], policy="DROP")}
        return {"cause": "host_firewall", "host": dest, "chain": "INPUT", "policy": True}
    if kind.startswith("fwd_"):
        backend = rng.choice(["nftables", "iptables"])
        spec = "%d/%s" % (p, proto)
        fw = {"kind": "firewalld", "backend": backend, "default_zone": "public", "zones": {}}
        host["firewall"] = fw
        host["groups"] = host["groups"] + ["fw_firewalld"]
        if kind == "fwd_default_zone":
            fw["zones"]["public"] = {"services": ["ssh"]}
            return {"cause": "host_firewall", "host": dest, "layer": "firewalld", "zone": "public"}
        if kind == "fwd_source_zone":
            fw["zones"]["public"] = {"services": ["ssh"], "ports": [spec]}
            fw["zones"]["internal"] = {"sources": ["%s/32" % sc.source_address], "services": ["ssh"]}
            sc.forbid.append("--zone=public --add-port=%s" % spec)
            return {"cause": "host_firewall", "host": dest, "layer": "firewalld", "zone": "internal"}
        if kind == "fwd_source_zone_open":
            fw["zones"]["public"] = {"services": ["ssh"]}
            fw["zones"]["internal"] = {"sources": [str(FRONT)], "services": ["ssh"], "ports": [spec]}
            return None
        if kind == "fwd_ipset_zone":
            fw["backend"] = "nftables"  # the iptables backend needs the ipset tool and kernel module
            fw["ipsets"] = {"scnclients": [sc.source_address]}
            fw["zones"]["public"] = {"services": ["ssh"], "ports": [spec]}
            fw["zones"]["work"] = {"ipset_sources": ["scnclients"], "services": ["ssh"]}
            sc.forbid.append("--zone=public --add-port=%s" % spec)
            return {"cause": "host_firewall", "host": dest, "layer": "firewalld", "zone": "work"}
        if kind == "fwd_rich_reject":
            fw["zones"]["public"] = {"services": ["ssh"], "ports": [spec], "rich_rules": [
                {"source": "%s/32" % sc.source_address, "port": p, "protocol": proto, "action": "reject"}]}
            # the port is open in the zone: opening it again changes nothing
            sc.forbid.append("--add-port=%s" % spec)
            return {"cause": "host_firewall", "host": dest, "layer": "firewalld", "zone": "public"}
    if kind.startswith("ufw_"):
        host["groups"] = host["groups"] + ["fw_ufw"]
        spec = "%d/%s" % (p, proto)
        if kind == "ufw_default_deny":
            host["firewall"] = {"kind": "ufw", "default_incoming": "deny", "rules": ["allow 22/tcp"]}
            return {"cause": "host_firewall", "host": dest, "layer": "ufw"}
        if kind == "ufw_allow_rule":
            host["firewall"] = {"kind": "ufw", "default_incoming": "deny", "rules": ["allow 22/tcp", "allow %s" % spec]}
            return None
        action = "deny" if kind == "ufw_deny_rule" else "reject"
        host["firewall"] = {"kind": "ufw", "default_incoming": "allow", "rules": ["%s %s" % (action, spec)]}
        return {"cause": "host_firewall", "host": dest, "layer": "ufw"}
    raise ValueError("unknown firewall fault %s" % kind)


def _listener(host, sc, kind):
    p, proto = sc.port, sc.proto
    if kind == "listen_any":
        host["listeners"].append({"proto": proto, "port": p, "kind": "banner" if proto == "tcp" else "echo"})
        return {"cause": "ok"}
    if kind == "listen_none":
        host["listeners"].append({"proto": proto, "port": p + 500})  # something else runs there
        return {"cause": "no_listener", "host": sc.dest}
    if kind == "listen_loopback":
        host["listeners"].append({"proto": proto, "port": p, "bind": "127.0.0.1"})
        return {"cause": "loopback_only", "host": sc.dest}
    extra = str(BACK.network_address + 120 + sc.index)
    host["extra_addresses"] = [extra]
    host["listeners"].append({"proto": proto, "port": p, "bind": extra})
    return {"cause": "wrong_address", "host": sc.dest}


def _special(rng, topo, sc, kind, router_managed):
    sc.faults = [kind]
    marker = _marker(sc)
    if kind in ("dnat_wrong_port", "dnat_ok"):
        host = _dest_host(topo, sc)
        inside = sc.port + 1000
        host["listeners"].append({"proto": "tcp", "port": inside})
        to_port = inside if kind == "dnat_ok" else inside + 1
        topo["router"]["dnat"].append({"comment": marker, "listen": "%s:%d/tcp" % (GW_FRONT, sc.port),
                                       "to": "%s:%d" % (host["address"], to_port)})
        sc.dest, sc.address = None, GW_FRONT
        if kind == "dnat_ok":
            sc.expect = {"cause": "ok"}
        elif router_managed:
            sc.expect = {"cause": "nat", "host": "router", "marker": marker}
        else:
            sc.expect = {"cause": "nat", "unmanaged": True}
            sc.unknown_ok = True
            sc.note = "an unmanaged port mapping: the reply's TTL hints at forwarding, the mapping cannot be read"
        return
    if kind == "absent_host":
        sc.dest, sc.address = None, str(BACK.network_address + 200 + sc.index)
        sc.expect = {"cause": "host_down", "address": sc.address}
        # only the router's ICMP host-unreachable decides, and it is rate-limited like every ICMP error
        # (net.ipv4.icmp_ratelimit): when it is suppressed, nothing on the wire or in the facts decides
        sc.unknown_ok = True
        # a managed router's neighbour table, read by the kernel trace right after the probe, decides
        sc.kernel_decides = bool(router_managed)
        sc.note = "no host there: host_down when the router's host-unreachable arrives (it may be rate-limited)"
        return
    if kind == "absent_on_link":
        # no host at an address on the source's own link: nothing answers its ARP, and its neighbour entry says so
        sc.dest, sc.address = None, str(FRONT.network_address + 200 + sc.index)
        sc.expect = {"cause": "host_down", "host": sc.source}
        sc.note = "no host on the source's own link: its neighbour entry FAILED decides (the probe asks twice)"
        return
    if kind == "reply_blackholed":
        host = _dest_host(topo, sc)
        host["listeners"].append({"proto": "tcp", "port": sc.port})
        host["routes"] = ["blackhole %s/32" % sc.source_address]
        # the destination's own routes (gathered) discard the reply: decidable
        sc.expect = {"cause": "no_route", "host": sc.dest}
        sc.note = "the destination's own routing discards the reply: no firewall layer explains it"
        return
    if kind == "rp_filter_strict":
        host = _dest_host(topo, sc)
        host["listeners"].append({"proto": "tcp", "port": sc.port})
        # the route back to the source leaves by another interface: strict reverse-path filtering drops
        # the packet at the routing decision, before any firewall hook sees it
        host["routes"] = ["%s/32 dev lo" % sc.source_address]
        host["sysctls"] = {"net.ipv4.conf.all.rp_filter": 1}
        sc.expect = {"cause": "no_route", "host": sc.dest}
        sc.unknown_ok = True
        sc.kernel_decides = True
        sc.note = "strict rp_filter drops it at the routing decision: the rules accept it; the kernel trace shows where"
        return
    raise ValueError(kind)


# --------------------------------------------------------------------------- judging

def judge(report, scenarios):
    """[(scenario dict, outcome, why)] for every scenario, outcome in right|unknown_ok|unknown|wrong."""
    by_key = {}
    for f in report["flows"]:
        by_key[(f.get("source"), f.get("address"), int(f.get("port")), f.get("protocol"))] = f
    out = []
    for sc in scenarios:
        s = sc.to_dict() if isinstance(sc, Scenario) else sc
        f = by_key.get((s["source"], s["address"], s["port"], s["protocol"]))
        if f is None:
            out.append((s, "wrong", "no finding for this flow in the report"))
            continue
        outcome, why = _judge_one(s, f)
        for alt in s.get("also_right") or []:
            if outcome != "right" and _judge_one(dict(s, expect=alt), f)[0] == "right":
                outcome, why = "right", "(an answer the evidence cannot tell from %s)" % s["expect"]["cause"]
        out.append((s, outcome, why))
    return out


def _culprit_names(f):
    c = f.get("culprit") or {}
    text = json.dumps(c, sort_keys=True)
    return c, text


def _judge_one(s, f):
    exp = s["expect"]
    cause = f.get("cause")
    c, ctext = _culprit_names(f)
    fix = f.get("fix") or {}
    fix_text = json.dumps([fix.get("commands"), fix.get("open_ports")])
    if cause == "unknown":
        if exp["cause"] == "unknown" or s["unknown_ok"]:
            return "unknown_ok", c.get("text") or ""
        return "unknown", "expected %s; said unknown: %s" % (exp["cause"], c.get("text"))
    if exp["cause"] == "unknown":
        return "wrong", "the evidence cannot decide, yet said %s: %s" % (cause, c.get("text") or c.get("summary"))
    if cause != exp["cause"]:
        return "wrong", "expected %s, said %s: %s" % (exp["cause"], cause, c.get("text") or c.get("summary"))
    if exp.get("host") and c.get("host") != exp["host"]:
        return "wrong", "expected culprit on %s, said %s" % (exp["host"], c.get("host"))
    if exp.get("address") and exp["cause"] != "host_down":
        addrs = exp["address"] if isinstance(exp["address"], (list, tuple)) else [exp["address"]]
        if c.get("address") not in addrs:
            return "wrong", "expected the hop at %s, said %s" % ("/".join(addrs), c.get("address"))
    if exp.get("marker") and exp["marker"] not in ctext:
        return "wrong", "the culprit does not name the rule %s: %s" % (exp["marker"], c.get("text"))
    if exp.get("chain") and c.get("chain") != exp["chain"]:
        return "wrong", "expected chain %s, said %s" % (exp["chain"], c.get("chain"))
    if exp.get("layer") and c.get("layer") != exp["layer"]:
        return "wrong", "expected layer %s, said %s (%s)" % (exp["layer"], c.get("layer"), c.get("text"))
    if exp.get("zone") and c.get("zone") != exp["zone"]:
        return "wrong", "expected zone %s, said %s" % (exp["zone"], c.get("zone"))
    for bad in s.get("forbid") or []:
        if bad in fix_text:
            return "wrong", "the fix proposes %r, which cannot help: %s" % (bad, (f.get("fix") or {}).get("summary"))
    return "right", ""


def tally(judged):
    """{fault: Counter(outcome)} plus a 'total' row."""
    rows = collections.defaultdict(collections.Counter)
    for s, outcome, why in judged:
        for fault in s["faults"]:
            rows[fault][outcome] += 1
        rows["total"][outcome] += 1
    return rows


# --------------------------------------------------------------------------- running

def run(seed, count, workdir, router_managed=None, keep=False, kernel=False):
    """Build the seed's lab, diagnose its flows (with the kernel trace when ``kernel``), judge the report."""
    topo, flows, scenarios = generate(seed, count, router_managed)
    if kernel:
        for sc in scenarios:
            if sc.kernel_decides:
                sc.unknown_ok = False
    workdir = os.path.abspath(workdir)  # the playbook resolves a relative report directory against its own
    os.makedirs(workdir, exist_ok=True)
    tpath = os.path.join(workdir, "topology.yml")
    with open(tpath, "w") as fh:
        yaml.safe_dump(topo, fh, sort_keys=False)
    fpath = os.path.join(workdir, "flows.yml")
    with open(fpath, "w") as fh:
        yaml.safe_dump({"reachability_flows": flows}, fh, sort_keys=False)
    with open(os.path.join(workdir, "scenarios.json"), "w") as fh:
        json.dump([s.to_dict() for s in scenarios], fh, indent=1)
    pin = "manual" if keep else "pid:%d" % os.getpid()
    started = time.monotonic()
    state = netlab.acquire(tpath, pin=pin, wait=int(os.environ.get("NETDIAG_LAB_WAIT", "900")))
    built = time.monotonic() - started
    try:
        lab = netlab.Lab(state)
        report_dir = os.path.join(workdir, "report")
        proc = subprocess.run([lab.ansible_bin("ansible-playbook"), "-i", lab.inventory, "netdiag.reachability.diagnose",
                               "-e", "@" + fpath, "-e", json.dumps({"reachability_report_dir": report_dir,
                                                                    "reachability_kernel_trace": bool(kernel)})],
                              env=lab.env(), capture_output=True, text=True, check=False, timeout=1800)
        with open(os.path.join(workdir, "diagnose.log"), "w") as fh:
            fh.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise RuntimeError("diagnose failed (rc %d): %s" % (proc.returncode, (proc.stdout + proc.stderr)[-3000:]))
        with open(os.path.join(report_dir, "report.json")) as fh:
            report = json.load(fh)
    finally:
        if not keep:
            netlab.release(pin)
    judged = judge(report, scenarios)
    with open(os.path.join(workdir, "judged.json"), "w") as fh:
        json.dump([{"scenario": s, "outcome": o, "why": w} for s, o, w in judged], fh, indent=1)
    return {"seed": seed, "count": count, "router_managed": topo["router"]["groups"] == ["routers"], "kernel": bool(kernel),
            "build_seconds": round(built, 1), "seconds": round(time.monotonic() - started, 1), "judged": judged}


def print_result(res, out=sys.stdout):
    print("seed %s: %d scenarios, router %s, lab built in %ss, %ss in all" % (
        res["seed"], res["count"], "managed" if res["router_managed"] else "unmanaged", res["build_seconds"],
        res["seconds"]), file=out)
    for s, outcome, why in res["judged"]:
        mark = {"right": "ok ", "unknown_ok": "ok?", "unknown": "UNK", "wrong": "BAD"}[outcome]
        print("  %s %s %-44s %s/%s -> %-15s %s" % (
            mark, s["id"], "+".join(s["faults"]), s["port"], s["protocol"], s["expect"]["cause"], why), file=out)
    counts = collections.Counter(o for s, o, w in res["judged"])
    print("  right %d, unknown (allowed) %d, unknown (decidable) %d, wrong %d" % (
        counts["right"], counts["unknown_ok"], counts["unknown"], counts["wrong"]), file=out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, action="append", help="scenario seed (repeat for several labs)")
    ap.add_argument("--count", type=int, default=20, help="scenarios per seed (one lab each)")
    ap.add_argument("--router", choices=["managed", "unmanaged", "random"], default="random")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "artifacts", "scenarios"))
    ap.add_argument("--plan-only", action="store_true", help="print the scenarios and their truth; build nothing")
    ap.add_argument("--keep", action="store_true", help="leave the last lab up")
    ap.add_argument("--kernel", action="store_true", help="diagnose with the kernel trace (reachability_kernel_trace)")
    ap.add_argument("--json", help="write every judged scenario of the run to this file")
    a = ap.parse_args(argv)
    seeds = a.seed or [1]
    managed = {"managed": True, "unmanaged": False, "random": None}[a.router]
    if not 1 <= a.count <= 60:
        ap.error("--count %d: use 1 to 60 scenarios per lab" % a.count)
    if a.plan_only:
        for seed in seeds:
            topo, flows, scenarios = generate(seed, a.count, managed)
            print("seed %s (router %s)" % (seed, "managed" if topo["router"]["groups"] else "unmanaged"))
            for sc in scenarios:
                print("  %s %-44s %s -> %s:%s/%s expect %s%s" % (
                    sc.sid, "+".join(sc.faults), sc.source, sc.address, sc.port, sc.proto, sc.expect,
                    " (unknown allowed)" if sc.unknown_ok else ""))
        return 0
    if os.geteuid() != 0:
        ap.error("the lab needs root (network namespaces)")
    results = []
    bad = 0
    for seed in seeds:
        res = run(seed, a.count, os.path.join(a.workdir, "seed-%s" % seed), managed, keep=a.keep, kernel=a.kernel)
        print_result(res)
        results.append(res)
        bad += sum(1 for s, o, w in res["judged"] if o in ("wrong", "unknown"))
    rows = collections.defaultdict(collections.Counter)
    for res in results:
        for fault, counter in tally(res["judged"]).items():
            rows[fault].update(counter)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"seeds": seeds, "count": a.count,
                       "results": [{"seed": r["seed"], "router_managed": r["router_managed"], "seconds": r["seconds"],
                                    "judged": [{"scenario": s, "outcome": o, "why": w} for s, o, w in r["judged"]]}
                                   for r in results],
                       "by_fault": {k: dict(v) for k, v in rows.items()}}, fh, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
