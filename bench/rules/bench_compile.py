# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compile time of the rule evaluator on saved facts with deep jump chains and many chains.

    .venv/bin/python bench/rules/bench_compile.py [--depth 10000] [--services 4000] [--runs 3]

Three shapes, each compiled (``Evaluator(ruleset)``: validation of the saved model, compiling every
match, the effect-free-jump analysis) RUNS times, the median reported:

- ``chain of counting jumps``: DEPTH chains, each counting and jumping to the next, the last one
  only logging (the whole chain changes nothing, so the evaluator drops the jump: the analysis
  has to walk all DEPTH levels), declared from the top down and in reverse order;
- ``chain of deciding jumps``: the same depth, each chain also dropping one port;
- ``kube-proxy-like``: one dispatch chain with SERVICES service rules (destination address and
  port) jumping to a per-service chain, which jumps to one endpoint chain that DNATs (three
  levels, 2 x SERVICES + 1 chains).

The depth is also run at 1/4, 1/2 and 1 of DEPTH, to show the growth (linear: the time per chain
stays flat).  Aim (issue 17): linear, under 2 s for 10,000 chains.  Prints a text report; the
figures of the last run are in docs/benchmarks.md ("Compiling saved rulesets").
"""
import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator  # noqa: E402


def _rule(matches, verdict, text, statements=()):
    return {"matches": matches, "statements": list(statements), "verdict": verdict, "origin": {"text": text}}


def _table(chains):
    return {"model": 1, "warnings": [], "tables": [{"backend": "nftables", "family": "inet", "name": "bench",
                                                    "sets": {}, "chains": chains}]}


def jump_chain(depth, deciding=False, reverse=False):
    chains = []
    for i in range(depth):
        rules = []
        if deciding:
            rules.append(_rule([{"key": "dport", "values": [i % 60000 + 1000]}], {"kind": "drop"}, "drop %d" % i))
        if i + 1 < depth:
            rules.append(_rule([], {"kind": "jump", "target": "c%d" % (i + 1)}, "jump c%d" % (i + 1), [{"kind": "counter"}]))
        else:
            rules.append(_rule([], None, "log", [{"kind": "log"}]))
        chains.append({"name": "c%d" % i, "type": None, "hook": None, "priority": None, "policy": None, "rules": rules})
    if reverse:
        chains.reverse()
    base = {"name": "input", "type": "filter", "hook": "input", "priority": 0, "policy": "drop", "rules": [
        _rule([], {"kind": "jump", "target": "c0"}, "jump c0"),
        _rule([{"key": "dport", "values": [80]}], {"kind": "accept"}, "accept 80")]}
    return _table([base] + chains)


def kube_proxy(services):
    dispatch = {"name": "services", "type": None, "hook": None, "priority": None, "policy": None, "rules": []}
    chains = [dispatch]
    for i in range(services):
        addr = "10.96.%d.%d" % (i // 250, i % 250 + 1)
        dispatch["rules"].append(_rule([{"key": "dst", "values": [addr]}, {"key": "dport", "values": [80 + i % 8]}],
                                       {"kind": "jump", "target": "svc-%d" % i}, "svc %d" % i))
        chains.append({"name": "svc-%d" % i, "type": None, "hook": None, "priority": None, "policy": None, "rules": [
            _rule([], {"kind": "jump", "target": "sep-%d" % i}, "sep %d" % i)]})
        chains.append({"name": "sep-%d" % i, "type": None, "hook": None, "priority": None, "policy": None, "rules": [
            _rule([], {"kind": "dnat", "addr": "10.244.%d.%d" % (i // 250, i % 250 + 1), "port": 8080}, "dnat %d" % i)]})
    pre = {"name": "prerouting", "type": "nat", "hook": "prerouting", "priority": -100, "policy": "accept",
           "rules": [_rule([], {"kind": "jump", "target": "services"}, "jump services")]}
    return _table([pre] + chains)


def measure(ruleset, runs):
    times = []
    for dummy in range(runs):
        start = time.perf_counter()
        evaluator = Evaluator(ruleset)
        times.append(time.perf_counter() - start)
    return statistics.median(times), evaluator


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=10000)
    ap.add_argument("--services", type=int, default=4000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    packet = {"family": "ipv4", "src": "10.0.0.1", "dst": "10.0.0.2", "proto": "tcp", "dport": 80}
    lines = ["compile time, median of %d runs (Evaluator(ruleset) on saved facts)" % args.runs]
    worst = 0.0
    for label, kwargs in (("chain of counting jumps, top down", {}),
                          ("chain of counting jumps, reverse order", {"reverse": True}),
                          ("chain of deciding jumps, top down", {"deciding": True})):
        for depth in (args.depth // 4, args.depth // 2, args.depth):
            took, evaluator = measure(jump_chain(depth, **kwargs), args.runs)
            worst = max(worst, took) if depth == args.depth else worst
            verdict = evaluator.evaluate(packet)["verdict"]
            lines.append("%-40s depth %6d: %6.3f s (%5.1f us per chain), verdict for tcp/80: %s"
                         % (label, depth, took, took / depth * 1e6, verdict))
    took, evaluator = measure(kube_proxy(args.services), args.runs)
    start = time.perf_counter()
    n = 1000
    for i in range(n):
        res = evaluator.evaluate(dict(packet, dst="10.96.%d.%d" % (i % 16, i % 250 + 1), dport=80 + i % 8),
                                 path="forward")
    per_packet = (time.perf_counter() - start) / n
    lines.append("%-40s %d chains: %6.3f s; evaluate %.2f ms per packet (last: %s to %s)"
                 % ("kube-proxy-like, three levels", 2 * args.services + 2, took, per_packet * 1e3,
                    res["verdict"], (res.get("nat") or {}).get("dst")))
    lines.append("aim (linear, under 2 s for %d chains): %s" % (args.depth, "met" if worst < 2 else "NOT met"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
