# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compile time of the rule evaluator on saved facts and host listings: deep jump chains, kube-proxy-like
rulesets and a million-element set.

    .venv/bin/python bench/rules/bench_compile.py [--depth 10000] [--services 1000,5000,10000]
        [--set-elements 1000000] [--runs 3] [--json bench/results/compile-DATE.json] [--collections DIR]

Each case runs in a fresh Python process, so its peak RSS (``ru_maxrss``) is its own; the input
(a JSON file or the text a host would print) is written by this process first, and the child's RSS
after reading it is reported as the baseline.  Parsing (for listings) and compiling
(``Evaluator(ruleset)``: validation of the model, compiling every match and set, the effect-free-jump
analysis) are timed RUNS times, the median reported; then one packet is evaluated (its time is the first
evaluation, caches cold) and 100 more (their median).

Cases:

- ``jump chain``: DEPTH chains in saved facts, each counting and jumping to the next, the last one only
  logging (the evaluator drops the whole chain: its analysis has to walk all DEPTH levels), declared top
  down, in reverse order, and with each chain also dropping one port;
- ``kube-proxy iptables-save``: kube-proxy's iptables mode for SERVICES services, one endpoint each:
  ``KUBE-SERVICES`` (cluster IP and port) -> ``KUBE-SVC-*`` (``KUBE-MARK-MASQ`` for traffic from outside
  the pod network, then the endpoint) -> ``KUBE-SEP-*`` (hairpin mark, DNAT), the node-port and
  postrouting chains, as ``iptables-save`` prints them (parsed, then compiled);
- ``kube-proxy nft JSON``: the nftables mode's shape as ``nft -j list ruleset`` prints it: a concatenated
  verdict map ``ip daddr . meta l4proto . th dport vmap @service-ips`` to per-service chains, the same two
  levels below it (one endpoint written as a plain ``goto``: kube-proxy's ``numgen random mod 1 vmap`` is
  not modelled);
- ``kube-proxy saved facts``: the model-form shape of earlier runs (dispatch chain, service, endpoint);
- ``set``: one nftables set of SET_ELEMENTS IPv4 addresses that a rule drops (``ip saddr @blocked``), as
  ``nft -j`` prints it, also as /32 prefixes.

Aim (issue 17): linear, under 2 s to compile 10,000 chains; a 1,000,000-element set in a second or two.
Prints a table; ``--json`` writes the raw results.  ``--collections DIR`` measures another checkout
(DIR holds ``ansible_collections/netdiag/reachability``).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _import(collections):
    sys.path.insert(0, collections or os.path.join(ROOT, ".collections"))
    from ansible_collections.netdiag.reachability.plugins.module_utils.rules import iptables, nftables
    from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator
    return iptables, nftables, Evaluator


# ----------------------------------------------------------------- inputs

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
        dispatch["rules"].append(_rule([{"key": "dst", "values": [_cluster_ip(i)]}, {"key": "dport", "values": [_port(i)]}],
                                       {"kind": "jump", "target": "svc-%d" % i}, "svc %d" % i))
        chains.append({"name": "svc-%d" % i, "type": None, "hook": None, "priority": None, "policy": None, "rules": [
            _rule([], {"kind": "jump", "target": "sep-%d" % i}, "sep %d" % i)]})
        chains.append({"name": "sep-%d" % i, "type": None, "hook": None, "priority": None, "policy": None, "rules": [
            _rule([], {"kind": "dnat", "addr": _pod_ip(i), "port": 8080}, "dnat %d" % i)]})
    pre = {"name": "prerouting", "type": "nat", "hook": "prerouting", "priority": -100, "policy": "accept",
           "rules": [_rule([], {"kind": "jump", "target": "services"}, "jump services")]}
    return _table([pre] + chains)


def _cluster_ip(i):
    return "10.96.%d.%d" % (i // 250, i % 250 + 1)


def _pod_ip(i):
    return "10.244.%d.%d" % (i // 250, i % 250 + 1)


def _port(i):
    return 80 + i % 8


def _hash(prefix, i):
    """A kube-proxy-like chain name suffix (16 upper-case letters and digits, stable)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    n = (i + 1) * 2654435761 % (2 ** 80)
    out = []
    for dummy in range(16):
        out.append(alphabet[n % 32])
        n //= 32
    return prefix + "".join(out)


def kube_proxy_iptables_save(services):
    """kube-proxy's iptables mode (nat table), one endpoint per service, as iptables-save prints it."""
    svc = [_hash("KUBE-SVC-", i) for i in range(services)]
    sep = [_hash("KUBE-SEP-", i) for i in range(services)]
    lines = ["# Generated by iptables-save v1.8.9 (nf_tables) on Mon Dec  7 12:00:00 2026", "*nat",
             ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
             ":KUBE-MARK-MASQ - [0:0]", ":KUBE-NODEPORTS - [0:0]", ":KUBE-POSTROUTING - [0:0]",
             ":KUBE-SERVICES - [0:0]"]
    lines += [":%s - [0:0]" % name for pair in zip(svc, sep) for name in pair]
    lines += [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE '
        '--random-fully',
    ]
    for i in range(services):
        name = "ns%d/svc%d:http" % (i // 100, i)
        lines.append('-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment "%s cluster IP" -m tcp --dport %d -j %s'
                     % (_cluster_ip(i), name, _port(i), svc[i]))
    lines.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last '
                 'rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
    for i in range(services):
        name = "ns%d/svc%d:http" % (i // 100, i)
        lines.append('-A %s ! -s 10.244.0.0/16 -d %s/32 -p tcp -m comment --comment "%s cluster IP" -m tcp --dport %d '
                     '-j KUBE-MARK-MASQ' % (svc[i], _cluster_ip(i), name, _port(i)))
        lines.append('-A %s -m comment --comment "%s -> %s:8080" -j %s' % (svc[i], name, _pod_ip(i), sep[i]))
        lines.append('-A %s -s %s/32 -m comment --comment "%s" -j KUBE-MARK-MASQ' % (sep[i], _pod_ip(i), name))
        lines.append('-A %s -p tcp -m comment --comment "%s" -m tcp -j DNAT --to-destination %s:8080'
                     % (sep[i], name, _pod_ip(i)))
    lines += ["COMMIT", "# Completed on Mon Dec  7 12:00:00 2026"]
    return "\n".join(lines) + "\n"


def _nft_match(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(proto, field):
    return {"payload": {"protocol": proto, "field": field}}


def kube_proxy_nft_json(services):
    """kube-proxy's nftables mode (its shape), as ``nft -j list ruleset`` prints it."""
    fam, table = "ip", "kube-proxy"
    items = [{"metainfo": {"version": "1.0.9", "release_name": "Old Doc Yak #3", "json_schema_version": 1}},
             {"table": {"family": fam, "name": table, "handle": 1}}]
    handle = [1]

    def obj(kind, **body):
        handle[0] += 1
        body.update(family=fam, table=table, handle=handle[0])
        items.append({kind: body})

    elements = [[{"concat": [_cluster_ip(i), "tcp", _port(i)]}, {"goto": {"target": "service-%d" % i}}]
                for i in range(services)]
    obj("map", name="service-ips", type=["ipv4_addr", "inet_proto", "inet_service"], map="verdict", elem=elements)
    obj("chain", name="nat-prerouting", type="nat", hook="prerouting", prio=-100, policy="accept")
    obj("chain", name="nat-output", type="nat", hook="output", prio=-100, policy="accept")
    obj("chain", name="nat-postrouting", type="nat", hook="postrouting", prio=100, policy="accept")
    obj("chain", name="services")
    obj("chain", name="mark-for-masquerade")
    obj("chain", name="masquerading")
    for i in range(services):
        obj("chain", name="service-%d" % i)
        obj("chain", name="endpoint-%d" % i)
    obj("rule", chain="nat-prerouting", expr=[{"jump": {"target": "services"}}])
    obj("rule", chain="nat-output", expr=[{"jump": {"target": "services"}}])
    obj("rule", chain="nat-postrouting", expr=[{"jump": {"target": "masquerading"}}])
    obj("rule", chain="mark-for-masquerade", expr=[{"mangle": {"key": {"meta": {"key": "mark"}}, "value": {
        "|": [{"meta": {"key": "mark"}}, 16384]}}}])
    obj("rule", chain="masquerading", expr=[
        _nft_match({"&": [{"meta": {"key": "mark"}}, 16384]}, 0), {"return": None}])
    obj("rule", chain="masquerading", expr=[{"masquerade": {"flags": "fully-random"}}])
    obj("rule", chain="services", expr=[{"vmap": {"key": {"concat": [
        _payload("ip", "daddr"), {"meta": {"key": "l4proto"}}, _payload("th", "dport")]}, "data": "@service-ips"}}])
    for i in range(services):
        obj("rule", chain="service-%d" % i, expr=[
            _nft_match(_payload("ip", "daddr"), _cluster_ip(i)),
            _nft_match(_payload("ip", "saddr"), {"prefix": {"addr": "10.244.0.0", "len": 16}}, "!="),
            {"jump": {"target": "mark-for-masquerade"}}])
        obj("rule", chain="service-%d" % i, expr=[{"goto": {"target": "endpoint-%d" % i}}])
        obj("rule", chain="endpoint-%d" % i, expr=[
            _nft_match(_payload("ip", "saddr"), _pod_ip(i)), {"jump": {"target": "mark-for-masquerade"}}])
        obj("rule", chain="endpoint-%d" % i, expr=[
            _nft_match({"meta": {"key": "l4proto"}}, "tcp"), {"dnat": {"addr": _pod_ip(i), "port": 8080}}])
    return json.dumps({"nftables": items})


def _address(i):
    """The i-th address of 10.0.0.0/8, scattered (an odd multiplier is a bijection modulo 2**24): no two
    neighbours, so the set cannot be stored as a few ranges."""
    n = i * 2654435761 % 2 ** 24
    return "10.%d.%d.%d" % (n >> 16, n >> 8 & 255, n & 255)


def big_set(elements, prefix=False):
    """One set of ELEMENTS IPv4 addresses (10.0.0.0 upwards) that the input chain drops, as nft -j prints it."""
    fam, table = "inet", "filter"
    elem = [{"prefix": {"addr": _address(i), "len": 32}} if prefix else _address(i) for i in range(elements)]
    items = [{"table": {"family": fam, "name": table, "handle": 1}},
             {"set": {"family": fam, "table": table, "name": "blocked", "type": "ipv4_addr", "handle": 2,
                      "flags": ["interval"] if prefix else [], "elem": elem}},
             {"chain": {"family": fam, "table": table, "name": "input", "handle": 3, "type": "filter",
                        "hook": "input", "prio": 0, "policy": "accept"}},
             {"rule": {"family": fam, "table": table, "chain": "input", "handle": 4, "expr": [
                 _nft_match(_payload("ip", "saddr"), "@blocked"), {"drop": None}]}}]
    return json.dumps({"nftables": items})


# ----------------------------------------------------------------- cases

def _packets(case, size):
    """(path, the first packet, 100 more) for a case."""
    if case.startswith("kube"):
        def one(i):
            return {"family": "ipv4", "src": "192.168.1.%d" % (i % 200 + 1), "dst": _cluster_ip(i), "proto": "tcp",
                    "sport": 40000 + i, "dport": _port(i)}
        last = size - 1
        return "forward", one(last), [one(i * size // 100) for i in range(100)]

    def pkt(i):
        return {"family": "ipv4", "src": _address(i), "dst": "10.200.0.1", "proto": "tcp", "dport": 80}
    if case == "set" or case == "set-prefix":
        return "input", pkt(size - 1), [pkt(i * size // 50) for i in range(50)] + [
            dict(pkt(0), src="192.168.%d.1" % i) for i in range(50)]
    return "input", pkt(0), [dict(pkt(0), dport=1000 + i * 97) for i in range(100)]


CASES = {
    # case: (label, input builder, kind of input)
    "jump": ("jump chain, counting, top down", jump_chain, "facts"),
    "jump-reverse": ("jump chain, counting, reverse order", lambda n: jump_chain(n, reverse=True), "facts"),
    "jump-deciding": ("jump chain, each dropping a port", lambda n: jump_chain(n, deciding=True), "facts"),
    "kube-iptables": ("kube-proxy iptables-save", kube_proxy_iptables_save, "iptables-save"),
    "kube-nft": ("kube-proxy nft JSON", kube_proxy_nft_json, "nft"),
    "kube-facts": ("kube-proxy saved facts", kube_proxy, "facts"),
    "set": ("nft set of IPv4 addresses", big_set, "nft"),
    "set-prefix": ("nft set of /32 prefixes", lambda n: big_set(n, prefix=True), "nft"),
}


def _rss_mib():
    """This process's peak resident set (VmHWM: ru_maxrss would keep the parent's peak across exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _parse(kind, text, data, iptables, nftables):
    if kind == "iptables-save":
        return iptables.parse_iptables_save(text)
    if kind == "nft":
        return nftables.parse_nft_json(text)
    return data


def run_case(case, size, path, runs, collections):
    """In the child: read the input, parse and compile it RUNS times, evaluate; returns the result dict."""
    iptables, nftables, Evaluator = _import(collections)
    kind = CASES[case][2]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    data = json.loads(text) if kind == "facts" else None
    baseline = _rss_mib()
    out = {"case": case, "label": CASES[case][0], "size": size, "input_bytes": len(text)}
    parse_times, compile_times = [], []
    for dummy in range(runs):
        evaluator = ruleset = None
        start = time.perf_counter()
        try:
            ruleset = _parse(kind, text, data, iptables, nftables)
            parsed = time.perf_counter()
            evaluator = Evaluator(ruleset)
        except Exception as exc:  # a limit, in the old code or the new one: report it
            out["error"] = "%s: %s" % (type(exc).__name__, str(exc)[:300])
            out["error_after_s"] = round(time.perf_counter() - start, 3)
            break
        done = time.perf_counter()
        if kind != "facts":
            parse_times.append(parsed - start)
        compile_times.append(done - parsed)
    if parse_times:
        out["parse_s"] = round(statistics.median(parse_times), 3)
    if compile_times:
        out["compile_s"] = round(statistics.median(compile_times), 3)
    if evaluator is not None:
        out["chains"] = sum(len(t["chains"]) for t in ruleset["tables"])
        out["rules"] = sum(len(c["rules"]) for t in ruleset["tables"] for c in t["chains"])
        path_name, first, more = _packets(case, size)
        start = time.perf_counter()
        res = evaluator.evaluate(first, path=path_name)
        out["evaluate_first_ms"] = round((time.perf_counter() - start) * 1e3, 3)
        out["verdict"] = res["verdict"]
        out["nat_dst"] = (res.get("nat") or {}).get("dst")
        out["reason"] = res["reason"][:160]
        times = []
        for p in more:
            start = time.perf_counter()
            evaluator.evaluate(p, path=path_name)
            times.append(time.perf_counter() - start)
        out["evaluate_median_ms"] = round(statistics.median(times) * 1e3, 3)
    out["baseline_rss_mib"] = round(baseline, 1)
    out["peak_rss_mib"] = round(_rss_mib(), 1)
    if evaluator is not None:
        # one more parse and compile under tracemalloc: the peak of the memory they allocate
        evaluator = ruleset = None
        tracemalloc.start()
        evaluator = Evaluator(_parse(kind, text, data, iptables, nftables))
        out["peak_traced_mib"] = round(tracemalloc.get_traced_memory()[1] / 2.0 ** 20, 1)
        tracemalloc.stop()
    return out


def spawn(case, size, runs, collections, tmp):
    """Write the case's input, run it in a fresh interpreter, return its result."""
    label, build, kind = CASES[case]
    data = build(size)
    path = os.path.join(tmp, "%s-%d.%s" % (case, size, "txt" if kind == "iptables-save" else "json"))
    with open(path, "w", encoding="utf-8") as f:
        f.write(data if isinstance(data, str) else json.dumps(data))
    del data
    argv = [sys.executable, os.path.abspath(__file__), "--child", case, "--size", str(size), "--input", path,
            "--runs", str(runs)]
    if collections:
        argv += ["--collections", collections]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    os.unlink(path)
    if proc.returncode != 0:
        return {"case": case, "label": label, "size": size, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout)


def _fmt(value, spec="%.3f"):
    if value is None:
        return "-"
    return "{:,}".format(value) if spec == "," else spec % value


def table(results):
    lines = ["| case | size | chains | rules | parse s | compile s | evaluate first / median ms "
             "| peak RSS MiB (baseline) | traced peak MiB | verdict |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        verdict = r.get("verdict") or r.get("error") or ""
        if r.get("nat_dst"):
            verdict += " (DNAT to %s)" % r["nat_dst"]
        lines.append("| %s | %s | %s | %s | %s | %s | %s / %s | %s (%s) | %s | %s |" % (
            r["label"], _fmt(r["size"], ","), _fmt(r.get("chains"), ","), _fmt(r.get("rules"), ","),
            _fmt(r.get("parse_s")), _fmt(r.get("compile_s")), _fmt(r.get("evaluate_first_ms"), "%.2f"),
            _fmt(r.get("evaluate_median_ms"), "%.2f"), _fmt(r.get("peak_rss_mib"), "%.0f"),
            _fmt(r.get("baseline_rss_mib"), "%.0f"), _fmt(r.get("peak_traced_mib"), "%.0f"), verdict))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=10000)
    ap.add_argument("--services", default="1000,5000,10000")
    ap.add_argument("--set-elements", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of %s" % ", ".join(CASES))
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--collections", help="a directory holding ansible_collections/netdiag/reachability")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.size, args.input, args.runs, args.collections)))
        return 0
    services = [int(s) for s in args.services.split(",") if s]
    sizes = {"jump": [args.depth // 4, args.depth // 2, args.depth], "jump-reverse": [args.depth],
             "jump-deciding": [args.depth], "kube-iptables": services, "kube-nft": services,
             "kube-facts": [max(services)], "set": [args.set_elements // 10, args.set_elements],
             "set-prefix": [args.set_elements]}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            for size in sizes[case]:
                results.append(spawn(case, size, args.runs, args.collections, tmp))
                print(json.dumps(results[-1]), file=sys.stderr)
    print(table(results))
    big = [r for r in results if (r.get("chains") or 0) >= 10000]
    worst = max([r["compile_s"] for r in big] or [0])
    print("aim (under 2 s to compile 10,000 chains or more): %s (slowest %.3f s)" % ("met" if worst < 2 else "NOT met", worst))
    for case in CASES:   # linear: the time per chain (per element for sets) of the two largest sizes
        runs = sorted((r for r in results if r["case"] == case and "compile_s" in r), key=lambda r: r["size"])
        if len(runs) > 1:
            per = [(r.get("parse_s", 0) + r["compile_s"]) / r["size"] for r in (runs[-2], runs[-1])]
            print("growth of %s from %d to %d: %.2fx the time per unit" % (case, runs[-2]["size"], runs[-1]["size"],
                                                                           per[1] / per[0]))
    if args.json:
        meta = {"bench": "compile", "date": time.strftime("%Y-%m-%d"), "python": sys.version.split()[0],
                "cpus": os.cpu_count(), "runs": args.runs, "command": " ".join(["python"] + sys.argv),
                "results": results}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
