# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's outputs are byte-identical between two versions of the collection's code.

    .venv/bin/python bench/controller/check_identity.py [--ref HEAD | --before DIR] [--runs grid:1000,fleet:1000,allpairs:1500]
        [--seed 13] [--keep DIR] [--files PATH ...]

For each run (shape:flows), generates the benchmark's fleet once (bench/controller/fleet.py, with this checkout's code), then runs
the role's filter calls on the same inputs with the old code and with this checkout's code, each in its
own process, and compares what they write byte for byte: the plan, the trace targets, the cloud
queries, report.json (to_nice_json, as the role writes it), report.md, report.html, junit.xml, the
set_stats data, the summary and the mismatches.  The old code is ``--ref`` (a git revision, taken with
``git archive``; default HEAD) or ``--before``, a directory holding ``ansible_collections/netdiag/reachability/plugins``
(a copy of the tree taken before a change).  With ``--files``, the old code is this checkout with only those
files (paths in the repository, e.g. plugins/plugin_utils/explain/verify.py) taken from the ref or the copy, so
that other work in progress in the checkout is on both sides.  Exit status 1 when anything differs.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUTPUTS = ("plan.json", "trace_targets.json", "cloud_queries.json", "report.json", "report.md", "report.html", "junit.xml",
           "stats.json", "summary.json")


def run(inputs_path, collections, out):
    """The filters of the collection under ``collections`` on the saved inputs; writes OUTPUTS into ``out``."""
    sys.path.insert(0, HERE)
    import bench_controller
    sys.path[:] = [p for p in sys.path if os.path.abspath(p) != os.path.join(ROOT, ".collections")]
    sys.path.insert(0, collections)
    filters = bench_controller._filters()
    from ansible_collections.netdiag.reachability.plugins.filter import reachability
    where = os.path.realpath(reachability.__file__)
    with open(inputs_path) as fh:
        inputs = json.load(fh)
    state, steps = bench_controller.pipeline(inputs, filters)
    for dummy, func in steps:
        func()
    os.makedirs(out, exist_ok=True)
    texts = {"plan.json": json.dumps(state["plan"], sort_keys=True, indent=1),
             "trace_targets.json": json.dumps(state["trace_targets"], sort_keys=True, indent=1),
             "cloud_queries.json": json.dumps(state["cloud_queries"], sort_keys=True, indent=1),
             "report.json": state["json"], "report.md": state["markdown"], "report.html": state["html"],
             "junit.xml": state["junit"], "stats.json": json.dumps(state["stats"], sort_keys=True, indent=1),
             "summary.json": json.dumps({"summary": state["summary"], "mismatches": state["mismatches"]}, indent=1)}
    for name in OUTPUTS:
        with open(os.path.join(out, name), "w") as fh:
            fh.write(texts[name])
    return where


def _old_tree(args, tmp):
    if args.before and not args.files:
        return os.path.abspath(args.before)
    dest = os.path.join(tmp, "old", "ansible_collections", "netdiag", "reachability")
    if not args.files:
        os.makedirs(dest)
        archive = subprocess.run(["git", "-C", ROOT, "archive", args.ref, "plugins", "galaxy.yml"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
        return os.path.join(tmp, "old")
    shutil.copytree(os.path.join(ROOT, "plugins"), os.path.join(dest, "plugins"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    for path in args.files:
        if args.before:
            with open(os.path.join(args.before, "ansible_collections", "netdiag", "reachability", path), "rb") as fh:
                data = fh.read()
        else:
            data = subprocess.run(["git", "-C", ROOT, "show", "%s:%s" % (args.ref, path)], check=True,
                                  capture_output=True).stdout
        with open(os.path.join(dest, path), "wb") as fh:
            fh.write(data)
    return os.path.join(tmp, "old")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="HEAD", help="the old code: a git revision (default HEAD)")
    ap.add_argument("--before", help="the old code: a directory with ansible_collections/netdiag/reachability/plugins")
    ap.add_argument("--runs", default="grid:1000,fleet:1000,allpairs:1500", help="shape:flows,... (bench/controller/fleet.py)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--keep", help="keep the inputs and both outputs in this directory")
    ap.add_argument("--files", nargs="+", help="take only these files (repository paths) from the old code")
    ap.add_argument("--run", nargs=3, metavar=("INPUTS", "COLLECTIONS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        print(run(*args.run))
        return 0
    tmp = tempfile.mkdtemp(prefix="netdiag-identity-")
    sys.path.insert(0, os.path.join(ROOT, ".collections"))
    sys.path.insert(0, HERE)
    import fleet
    differ = []
    try:
        trees = {"old": _old_tree(args, tmp), "new": os.path.join(ROOT, ".collections")}
        for spec in args.runs.split(","):
            shape, size = spec.split(":")
            work = os.path.join(args.keep or tmp, "%s-%s" % (shape, size))
            os.makedirs(work, exist_ok=True)
            inputs = fleet.Fleet(shape, int(size), seed=args.seed).inputs()
            inputs_path = os.path.join(work, "inputs.json")
            with open(inputs_path, "w") as fh:
                json.dump(inputs, fh)
            for name, tree in trees.items():
                proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--run", inputs_path, tree,
                                       os.path.join(work, name)], capture_output=True, text=True, check=False)
                if proc.returncode:
                    sys.stderr.write(proc.stderr)
                    raise SystemExit("the %s code failed" % name)
                print("%s code: %s" % (name, proc.stdout.strip()))
            bad = []
            for name in OUTPUTS:
                with open(os.path.join(work, "old", name), "rb") as a, open(os.path.join(work, "new", name), "rb") as b:
                    old, new = a.read(), b.read()
                print("  %-18s %10d bytes  %s" % (name, len(new), "identical" if old == new else "DIFFERS"))
                if old != new:
                    bad.append(name)
            print("%s %s flows: %s" % (shape, size, "identical" if not bad else "%d file(s) differ" % len(bad)), flush=True)
            differ += bad
        return 1 if differ else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
