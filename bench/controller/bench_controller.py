# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's share of a diagnosis at 1,000 to 10,000 flows (issue 13), in-process, no hosts.

    .venv/bin/python bench/controller/bench_controller.py [--sizes 1000,2500,5000,10000] [--shapes grid,fleet]
        [--allpairs | --no-allpairs] [--seed 13] [--trace-limit 30] [--no-cloud] [--out bench/results/controller-DATE.json]
        [--profile STEP] [--dump DIR] [--no-tracemalloc] [--collections DIR] [--repeat N]

The inputs are a synthetic fleet shaped as the reachability role leaves hostvars (bench/controller/fleet.py:
listeners_info and firewall_info results copied from the seed lab's captured facts, the probe module's
and the trace library's results, security_group_info results).  The steps are the filter calls the
role makes, in its order, on those inputs:

    plan            flow_plan(reachability_flows, groups, hostvars, max_flows)         tasks/plan.yml
    trace_targets   trace_targets(reachability_probe, limit), once per source           tasks/probe.yml
    cloud_queries   cloud_queries(plan, hostvars, reachability_cloud)                   tasks/report.yml
    explain         explain(plan, hostvars, cloud results)                              tasks/report.yml
    report_stats    report_stats(report)                                                set_stats
    report_json     to_nice_json(report, indent=1)                                      report.json
    report_markdown report_markdown(report)                                             report.md
    report_html     report_html(report)                                                 report.html
    report_junit    report_junit(report)                                                junit.xml
    report_summary  report_summary(report), report_mismatches(report)                   the summary and the fail task

Shapes: ``grid`` 10 sources x 50 destinations x N/500 ports; ``fleet`` 1 source x 100 destinations x
N/100 ports; ``allpairs`` 10 x 50 x 3 ports (1,500 flows).  Each (shape, size) runs in a fresh
subprocess: wall seconds per step (time.perf_counter), the process's peak RSS after each step
(getrusage ru_maxrss, which only grows: the step that raises it is the one that needed it), and in a
second pass under tracemalloc each step's peak of Python allocations above what was live when it
started.  ``--dump DIR`` also writes each run's report files (report.json as the role writes it, report.md, report.html,
junit.xml) and the filters' inputs; ``--profile STEP`` prints a cProfile of that step instead.
``--collections DIR`` runs another copy of the collection (DIR holds its ``ansible_collections/``), to time the
code before a change with the same inputs.  Wall seconds move with the machine's load (printed with each run);
the CPU seconds of each step (time.process_time) are in the JSON as well, and ``--repeat N`` runs each step N
times and keeps the fastest (wall and CPU separately).  bench/controller/check_identity.py
checks that two versions of the code write the same reports from these inputs.
"""
import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.environ.get("NETDIAG_BENCH_COLLECTIONS") or os.path.join(ROOT, ".collections"))
sys.path.insert(0, HERE)

STEPS = ("plan", "trace_targets", "cloud_queries", "explain", "report_stats", "report_json", "report_markdown",
         "report_html", "report_junit", "report_summary")


def _filters():
    """The role's filters, imported the way Ansible loads them (the collection's plugin files)."""
    from ansible.plugins.filter.core import to_nice_json
    from ansible_collections.netdiag.reachability.plugins.filter import reachability, report_ci, roles
    out = dict(reachability.FilterModule().filters())
    out.update(report_ci.FilterModule().filters())
    out.update(roles.FilterModule().filters())
    out["to_nice_json"] = to_nice_json
    return out


def pipeline(inputs, filters):
    """(step, callable) in the role's order; each callable stores its result in ``state``."""
    state = {}
    hv, groups = inputs["hostvars"], inputs["groups"]

    def plan():
        state["plan"] = filters["flow_plan"](inputs["flows"], groups, hv, inputs["max_flows"])

    def trace_targets():
        state["trace_targets"] = {s: filters["trace_targets"](hv[s]["reachability_probe"], inputs["trace_limit"])
                                  for s in state["plan"]["sources"]}

    def cloud_queries():
        state["cloud_queries"] = filters["cloud_queries"](state["plan"], hv, {})

    def explain():
        state["report"] = filters["explain"](state["plan"], hv, inputs["cloud"] or {})

    def report_stats():
        state["stats"] = filters["report_stats"](state["report"])

    def report_json():
        state["json"] = filters["to_nice_json"](state["report"], indent=1) + "\n"

    def report_markdown():
        state["markdown"] = filters["report_markdown"](state["report"])

    def report_html():
        state["html"] = filters["report_html"](state["report"])

    def report_junit():
        state["junit"] = filters["report_junit"](state["report"])

    def report_summary():
        state["summary"] = filters["report_summary"](state["report"])
        state["mismatches"] = filters["report_mismatches"](state["report"])

    steps = {name: func for name, func in locals().items() if name in STEPS}
    return state, [(name, steps[name]) for name in STEPS]


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


def child(args):
    import fleet
    t0 = time.perf_counter()
    inputs = fleet.Fleet(args.shape, args.size, seed=args.seed, trace_limit=args.trace_limit, cloud=not args.no_cloud).inputs()
    generate_s = time.perf_counter() - t0
    filters = _filters()
    gc.collect()
    rss_inputs = _rss_mib()
    from ansible_collections.netdiag.reachability.plugins.filter import reachability
    out = {"code": os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(reachability.__file__)))),
           "shape": args.shape, "flows": args.size, "sources": inputs["sources"], "destinations": inputs["destinations"],
           "ports": inputs["ports"], "hosts": len(inputs["hostvars"]), "generate_s": round(generate_s, 3),
           "rss_after_inputs_mib": round(rss_inputs, 1), "steps": {}}
    state, steps = pipeline(inputs, filters)
    if args.profile:
        for name, func in steps:
            if name != args.profile:
                func()
                continue
            prof = cProfile.Profile()
            prof.runcall(func)
            buf = io.StringIO()
            stats = pstats.Stats(prof, stream=buf).sort_stats("cumulative")
            stats.print_stats(35)
            stats.sort_stats("tottime").print_stats(20)
            sys.stderr.write(buf.getvalue())
            break
        return out
    for name, func in steps:
        walls, cpus = [], []
        kept = set(state)
        for i in range(args.repeat):
            if i:   # the previous run's result goes first, so that repeating does not raise the peak RSS
                for key in set(state) - kept:
                    del state[key]
                gc.collect()
            t, cpu = time.perf_counter(), time.process_time()
            func()
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - cpu)
        out["steps"][name] = {"seconds": round(min(walls), 4), "cpu_seconds": round(min(cpus), 4),
                              "rss_after_mib": round(_rss_mib(), 1)}
    out["total_s"] = round(sum(s["seconds"] for s in out["steps"].values()), 3)
    out["total_cpu_s"] = round(sum(s["cpu_seconds"] for s in out["steps"].values()), 3)
    out["peak_rss_mib"] = round(_rss_mib(), 1)
    report = state["report"]
    out["by_cause"] = report["summary"]["by_cause"]
    out["summary"] = {k: v for k, v in report["summary"].items() if k != "by_cause"}
    out["traced"] = sum(1 for f in report["flows"] if (f["evidence"] or {}).get("trace"))
    out["sizes_bytes"] = {k: len(state[k]) for k in ("json", "markdown", "html", "junit")}
    if args.dump:
        os.makedirs(args.dump, exist_ok=True)
        base = os.path.join(args.dump, "%s-%d" % (args.shape, args.size))
        for key, ext in (("json", "report.json"), ("markdown", "report.md"), ("html", "report.html"), ("junit", "junit.xml")):
            with open("%s.%s" % (base, ext), "w") as fh:
                fh.write(state[key])
        with open(base + ".inputs.json", "w") as fh:
            json.dump(inputs, fh)
    if args.no_tracemalloc:
        return out
    # second pass: Python allocations per step (tracemalloc slows the code down, so its times are not reported)
    del state, steps
    gc.collect()
    state, steps = pipeline(inputs, filters)
    tracemalloc.start()
    for name, func in steps:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        func()
        out["steps"][name]["tracemalloc_peak_mib"] = round((tracemalloc.get_traced_memory()[1] - before) / 2 ** 20, 1)
    tracemalloc.stop()
    return out


def run_child(shape, size, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--shape", shape, "--size", str(size),
           "--seed", str(args.seed), "--trace-limit", str(args.trace_limit)]
    if args.no_cloud:
        cmd.append("--no-cloud")
    if args.no_tracemalloc:
        cmd.append("--no-tracemalloc")
    cmd += ["--repeat", str(args.repeat)]
    if args.dump:
        cmd += ["--dump", args.dump]
    if args.profile:
        cmd += ["--profile", args.profile]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)   # its stderr is shown on failure
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        raise SystemExit("%s %d failed (%d)" % (shape, size, proc.returncode))
    if args.profile:
        sys.stderr.write(proc.stderr)
    return json.loads(proc.stdout)


def table(results):
    lines = ["| shape | flows | S x D x P | " + " | ".join(STEPS) + " | total s | total CPU s | peak RSS MiB |",
             "|---|---:|---|" + "---:|" * (len(STEPS) + 3)]
    for r in results:
        lines.append("| %s | %d | %d x %d x %d | %s | **%.2f** | %.2f | %.0f |" % (
            r["shape"], r["flows"], r["sources"], r["destinations"], r["ports"],
            " | ".join("%.3f" % r["steps"][s]["seconds"] for s in STEPS), r["total_s"], r["total_cpu_s"], r["peak_rss_mib"]))
    if any("tracemalloc_peak_mib" not in r["steps"][STEPS[0]] for r in results):
        return "\n".join(lines)
    lines += ["", "tracemalloc peak per step (MiB above what was live when the step started):", "",
              "| shape | flows | " + " | ".join(STEPS) + " | RSS with inputs MiB |", "|---|---:|" + "---:|" * (len(STEPS) + 1)]
    for r in results:
        lines.append("| %s | %d | %s | %.0f |" % (r["shape"], r["flows"], " | ".join(
            "%.1f" % r["steps"][s]["tracemalloc_peak_mib"] for s in STEPS), r["rss_after_inputs_mib"]))
    return "\n".join(lines)


def growth(results):
    """Per shape and step, the time ratio from the smallest to the largest size, against the flow ratio."""
    lines = []
    for shape in sorted({r["shape"] for r in results}):
        rs = sorted((r for r in results if r["shape"] == shape), key=lambda r: r["flows"])
        if len(rs) < 2:
            continue
        hi = rs[-1]
        lo = next((r for r in rs if r["flows"] * 4 == hi["flows"]), rs[0])   # 2,500 -> 10,000 when both ran
        ratios = ", ".join("%s %.1fx" % (s, hi["steps"][s]["seconds"] / max(lo["steps"][s]["seconds"], 1e-4)) for s in STEPS)
        lines.append("%s %d -> %d flows (%.1fx): %s; total %.1fx" % (
            shape, lo["flows"], hi["flows"], hi["flows"] / lo["flows"], ratios, hi["total_s"] / lo["total_s"]))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,2500,5000,10000")
    ap.add_argument("--shapes", default="grid,fleet")
    ap.add_argument("--allpairs", dest="allpairs", action="store_true", default=True,
                    help="also the 10 sources x 50 destinations x 3 ports shape (1,500 flows; the default)")
    ap.add_argument("--no-allpairs", dest="allpairs", action="store_false")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--trace-limit", type=int, default=30, help="reachability_trace_limit (the role's default: 30)")
    ap.add_argument("--no-cloud", action="store_true", help="no security group in front of any destination")
    ap.add_argument("--no-tracemalloc", action="store_true", help="skip the second pass (no tracemalloc peaks)")
    ap.add_argument("--repeat", type=int, default=1, help="run each step this many times, report the fastest (a loaded machine)")
    ap.add_argument("--collections", help="run another copy of the collection: the directory holding its ansible_collections/ "
                                          "(e.g. one made with git archive; the default is this checkout)")
    ap.add_argument("--out", help="write the raw results here (JSON)")
    ap.add_argument("--dump", help="write each run's report files and inputs into this directory")
    ap.add_argument("--profile", choices=STEPS, help="print a cProfile of this step (no timings)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--shape", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.collections:
        os.environ["NETDIAG_BENCH_COLLECTIONS"] = os.path.abspath(args.collections)   # for the subprocesses
    if args.child:
        json.dump(child(args), sys.stdout)
        return
    runs = [(shape, int(size)) for shape in args.shapes.split(",") if shape for size in args.sizes.split(",") if size]
    if args.allpairs:
        runs.append(("allpairs", 1500))
    results = []
    for shape, size in runs:
        r = run_child(shape, size, args)
        if args.profile:
            continue
        results.append(r)
        print("%-8s %6d flows: %6.2f s (CPU %.2f s), peak RSS %5.0f MiB (explain %.2f s, html %.2f s), load %.1f, code %s" % (
            shape, size, r["total_s"], r["total_cpu_s"], r["peak_rss_mib"], r["steps"]["explain"]["seconds"],
            r["steps"]["report_html"]["seconds"], os.getloadavg()[0], r["code"]), flush=True)
    if args.profile:
        return
    print()
    print(table(results))
    print()
    print(growth(results))
    if args.out:
        doc = {"benchmark": "bench/controller/bench_controller.py", "issue": 13,
               "command": " ".join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(ROOT) else sys.executable]
                                   + [os.path.relpath(os.path.abspath(__file__), ROOT)] + sys.argv[1:]),
               "date": time.strftime("%Y-%m-%d"), "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                                              "platform": platform.platform(),
                                                              "load_average": list(os.getloadavg())},
               "collections": os.environ.get("NETDIAG_BENCH_COLLECTIONS") or ".collections (this checkout)",
               "steps": list(STEPS), "results": results}
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
        print("\nwrote %s" % args.out)


if __name__ == "__main__":
    main()
