# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse a generated 5,000-rule nftables ruleset and evaluate 100,000 packets.

    .venv/bin/python bench/rules/bench_evaluator.py [--rules N] [--packets N]

Aim (issue 4): parse under 1 s, at least 50,000 packets/s.
"""
import argparse
import json
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.netdiag.reachability.plugins.module_utils.rules import nftables  # noqa: E402
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator  # noqa: E402


def match(proto, field, right):
    return {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": field}}, "right": right}}


def generate(n_rules, rng):
    """A firewalld-like shape: ct state first, an iifname vmap to per-zone chains, then many port rules."""
    fam, table = "inet", "bench"
    items = [{"table": {"family": fam, "name": table, "handle": 1}},
             {"set": {"family": fam, "table": table, "name": "blocked", "type": "ipv4_addr", "handle": 2,
                      "flags": ["interval"], "elem": [{"prefix": {"addr": "10.%d.0.0" % i, "len": 16}}
                                                      for i in range(100, 200)]}},
             {"chain": {"family": fam, "table": table, "name": "input", "handle": 3, "type": "filter",
                        "hook": "input", "prio": 0, "policy": "drop"}}]
    zones = ["zone%d" % i for i in range(20)]
    for z in zones:
        items.append({"chain": {"family": fam, "table": table, "name": z, "handle": 4}})
    handle = 10

    def rule(chain, expr):
        nonlocal handle
        handle += 1
        items.append({"rule": {"family": fam, "table": table, "chain": chain, "handle": handle, "expr": expr}})

    rule("input", [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}},
                   {"accept": None}])
    rule("input", [match("ip", "saddr", "@blocked"), {"drop": None}])
    rule("input", [{"vmap": {"key": {"meta": {"key": "iifname"}}, "data": {"set": [
        ["eth%d" % i, {"jump": {"target": z}}] for i, z in enumerate(zones)]}}}])
    for dummy in range(n_rules - 3):
        z = rng.choice(zones + ["input"])
        kind = rng.random()
        if kind < 0.6:
            expr = [match("tcp", "dport", rng.randint(1, 65535)), {"counter": {"packets": 0, "bytes": 0}},
                    {"accept": None}]
        elif kind < 0.8:
            a = rng.randint(1, 65000)
            expr = [match("ip", "saddr", {"prefix": {"addr": "10.%d.%d.0" % (rng.randint(0, 99), rng.randint(0, 255)),
                                                     "len": 24}}),
                    match("tcp", "dport", {"set": [a, {"range": [a + 10, a + 20]}]}), {"accept": None}]
        elif kind < 0.9:
            expr = [match("udp", "dport", rng.randint(1, 65535)), {"reject": {"type": "icmpx",
                                                                              "expr": "admin-prohibited"}}]
        else:
            expr = [match("tcp", "dport", rng.randint(1, 65535)), {"reject": {"type": "tcp reset"}}]
        rule(z, expr)
    return json.dumps({"nftables": items})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=5000)
    ap.add_argument("--packets", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    text = generate(args.rules, rng)

    t0 = time.perf_counter()
    ruleset = nftables.parse_nft_json(text)
    t1 = time.perf_counter()
    ev = Evaluator(ruleset)
    t2 = time.perf_counter()
    n_rules = sum(len(c["rules"]) for t in ruleset["tables"] for c in t["chains"])

    packets = []
    for dummy in range(args.packets):
        proto = rng.choice(("tcp", "tcp", "tcp", "udp"))
        packets.append({"family": "ipv4", "proto": proto,
                        "src": "10.%d.%d.%d" % (rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)),
                        "dst": "10.200.2.10", "sport": rng.randint(1024, 65535), "dport": rng.randint(1, 65535),
                        "iif": "eth%d" % rng.randint(0, 25), "ct_state": rng.choice(("new",) * 9 + ("established",))})
    verdicts = {}
    t3 = time.perf_counter()
    for p in packets:
        v = ev.evaluate(p)["verdict"]
        verdicts[v] = verdicts.get(v, 0) + 1
    t4 = time.perf_counter()
    print("rules parsed: %d (JSON %d bytes)" % (n_rules, len(text)))
    print("parse: %.3f s   compile: %.3f s" % (t1 - t0, t2 - t1))
    print("evaluate: %d packets in %.2f s = %.0f packets/s" % (len(packets), t4 - t3, len(packets) / (t4 - t3)))
    print("verdicts: %s" % json.dumps(verdicts, sort_keys=True))
    ok = (t1 - t0) < 1.0 and len(packets) / (t4 - t3) >= 50000
    print("aim (parse < 1 s, >= 50,000 packets/s): %s" % ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
