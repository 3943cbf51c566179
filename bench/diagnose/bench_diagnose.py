# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""diagnose, end to end, as a user runs it, in one bounded run:

1. **vs by hand** on the seed lab (tests/lab/flows/seeds.yml): the diagnose playbook against
   the raw wire evidence a person would collect for the same flows - ``nmap -sS/-sU --reason``
   from the source to each destination (its flow ports), then ``traceroute -T`` (``-U`` for UDP)
   for each flow nmap did not find open or closed - measured back to back; the ratio of the two.
2. **scaling**: the minimal topology with plain hosts added up to 20, 50 and 100 hosts, each with
   5 ports from the client (``--sizes``): wall time, the controller's peak RSS (the largest process
   of the ansible-playbook run) and the module round trips per destination host (tasks that ran a
   module on it; set_fact, include_role and other controller-side tasks do not count).
3. **all-pairs** (``--all-pairs 10 50``): 10 sources, each to the same 50 destinations on 3 ports
   (22, 80, 443/tcp: 1,500 flows) in one run: wall time, peak RSS, round trips per host.

Each lab needs the machine's lab slot (``netlab.acquire`` waits for it) and is taken down after.
Results: bench/results/diagnose.json.

    .venv/bin/python bench/diagnose/bench_diagnose.py [--sizes 20 50 100] [--skip-seeds] [--all-pairs 10 50]

A run keeps the results of the parts it did not run from the previous bench/results/diagnose.json.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
import netlab  # noqa: E402  pylint: disable=wrong-import-position

SEEDS = os.path.join(ROOT, "tests", "lab", "topologies", "seeds.yml")
MINIMAL = os.path.join(ROOT, "tests", "lab", "topologies", "minimal.yml")
SEED_FLOWS = os.path.join(ROOT, "tests", "lab", "flows", "seeds.yml")
SCALE_PORTS = ["22/tcp", "80/tcp", "443/tcp", "8080/tcp", "53/udp"]
CONTROLLER_ACTIONS = {"include_role", "import_role", "include_tasks", "import_tasks", "set_fact", "add_host", "debug",
                      "fail", "assert", "meta", "include_vars", "group_by", "set_stats", "validate_argument_spec"}
TRACE_MAX_HOPS, TRACE_WAIT = 16, 1   # the role's defaults (reachability_trace_max_hops, reachability_trace_timeout)
RSS_WRAPPER = ("import resource, subprocess, sys\n"
               "rc = subprocess.call(sys.argv[2:])\n"
               "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
               "sys.exit(rc)\n")


def run_diagnose(lab, flow_args):
    """One diagnose run: wall time, peak RSS of the controller (KiB), round trips per host, the report."""
    with tempfile.TemporaryDirectory() as tmp:
        env = lab.env()
        env.update({"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "bench_json",
                    "ANSIBLE_CALLBACK_PLUGINS": os.path.join(HERE, "callbacks")})
        rss_file = os.path.join(tmp, "rss")
        argv = [sys.executable, "-c", RSS_WRAPPER, rss_file, lab.ansible_bin("ansible-playbook"), "-i", lab.inventory,
                "netdiag.reachability.diagnose"] + flow_args + ["-e", json.dumps({"reachability_report_dir": tmp})]
        t = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        wall = time.monotonic() - t
        if proc.returncode != 0:
            sys.exit("diagnose failed:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
        doc = json.loads(proc.stdout)
        with open(rss_file) as fh:
            rss_kib = int(fh.read())
        with open(os.path.join(tmp, "report.json")) as fh:
            report = json.load(fh)
    trips, trip_tasks = {}, {}
    for play in doc["plays"]:
        for task in play["tasks"]:
            if str(task.get("action")).rsplit(".", 1)[-1] in CONTROLLER_ACTIONS:   # ansible.builtin.set_fact
                continue
            for host, res in task["hosts"].items():
                if res.get("skipped") or host == "localhost":
                    continue
                items = res.get("results") if isinstance(res.get("results"), list) else []
                looped = items and isinstance(items[0], dict) and "ansible_loop_var" in items[0]
                trips[host] = trips.get(host, 0) + (len([i for i in items if not i.get("skipped")]) if looped else 1)
                trip_tasks.setdefault(host, []).append("%s (%s)" % (task["task"], task.get("action")))
    return {"wall_s": round(wall, 2), "controller_peak_rss_mib": round(rss_kib / 1024.0, 1), "round_trips": trips,
            "round_trip_tasks": trip_tasks, "report": report}


def nmap_states(lab, source, address, ports):
    """nmap from ``source`` to ``address``: {(port, proto): state}."""
    tcp = sorted(p for p, proto in ports if proto == "tcp")
    udp = sorted(p for p, proto in ports if proto == "udp")
    spec = ",".join((["T:" + ",".join(map(str, tcp))] if tcp else []) + (["U:" + ",".join(map(str, udp))] if udp else []))
    argv = ["nmap", "-n", "-Pn", "-T4", "--reason", "-oX", "-", "-p", spec] + (["-sS"] if tcp else []) + (["-sU"] if udp else [])
    out = lab.exec(source, argv + [address], timeout=600).stdout
    states = {}
    for port in ET.fromstring(out).iter("port"):
        states[(int(port.get("portid")), port.get("protocol"))] = port.find("state").get("state")
    return states


def by_hand(lab, flows):
    """nmap per destination, then traceroute for each flow it did not find open or closed."""
    per_dest = {}
    for f in flows:
        if f["protocol"] in ("tcp", "udp"):
            per_dest.setdefault((f["source"], f["address"]), set()).add((f["port"], f["protocol"]))
    t = time.monotonic()
    states = {}
    for (source, address), ports in sorted(per_dest.items()):
        for key, state in nmap_states(lab, source, address, ports).items():
            states[(source, address) + key] = state
    nmap_s = time.monotonic() - t
    failed = [k for k, s in sorted(states.items()) if s not in ("open", "closed")]
    t = time.monotonic()
    for source, address, port, proto in failed:
        mode = "-T" if proto == "tcp" else "-U"
        lab.exec(source, ["traceroute", "-n", mode, "-p", str(port), "-q", "1", "-w", str(TRACE_WAIT),
                          "-m", str(TRACE_MAX_HOPS), address], check=False, timeout=300)
    trace_s = time.monotonic() - t
    return {"wall_s": round(nmap_s + trace_s, 2), "nmap_s": round(nmap_s, 2), "traceroute_s": round(trace_s, 2),
            "nmap_runs": len(per_dest), "traceroutes": len(failed), "ports": len(states)}


def seeds_vs_by_hand():
    pin = "pid:%d" % os.getpid()
    state = netlab.acquire(SEEDS, pin=pin, wait=1800)
    try:
        lab = netlab.Lab(state)
        ours = run_diagnose(lab, ["-e", "@" + SEED_FLOWS])
        time.sleep(3)  # the router's ICMP tokens for the client, as between two people's commands
        hand = by_hand(lab, ours["report"]["flows"])
    finally:
        netlab.release(pin)
    traced = sum(1 for f in ours["report"]["flows"] if (f.get("evidence") or {}).get("trace"))
    return {"lab": "seeds", "flows": ours["report"]["summary"]["flows"], "traced_flows": traced,
            "diagnose_s": ours["wall_s"], "controller_peak_rss_mib": ours["controller_peak_rss_mib"],
            "source_round_trips": ours["round_trips"].get("client"), "by_hand": hand,
            "ratio_diagnose_over_by_hand": round(ours["wall_s"] / hand["wall_s"], 2)}


def scaling(size):
    pin = "pid:%d" % os.getpid()
    t = time.monotonic()
    state = netlab.acquire(MINIMAL, pin=pin, scale=size - 2, wait=1800)
    build = time.monotonic() - t
    try:
        lab = netlab.Lab(state)
        dests = [h for h in lab.hosts if h not in ("client", "router")]
        flows = {"reachability_flows": [{"from": "client", "to": dests, "ports": SCALE_PORTS}]}
        ours = run_diagnose(lab, ["-e", json.dumps(flows)])
    finally:
        netlab.release(pin)
    per_dest = sorted(ours["round_trips"].get(h, 0) for h in dests)
    return {"hosts": len(dests) + 1, "flows": ours["report"]["summary"]["flows"], "wall_s": ours["wall_s"],
            "controller_peak_rss_mib": ours["controller_peak_rss_mib"],
            "round_trips_per_destination": {"min": per_dest[0], "max": per_dest[-1]},
            "round_trips_source": ours["round_trips"].get("client"), "lab_build_s": round(build, 2),
            "round_trip_tasks": {h: ours["round_trip_tasks"].get(h) for h in ("client", dests[0])},
            "by_cause": ours["report"]["summary"]["by_cause"]}


ALL_PAIRS_PORTS = ["22/tcp", "80/tcp", "443/tcp"]


def all_pairs(sources, destinations):
    pin = "pid:%d" % os.getpid()
    t = time.monotonic()
    state = netlab.acquire(MINIMAL, pin=pin, scale=sources + destinations, wait=1800)
    build = time.monotonic() - t
    try:
        lab = netlab.Lab(state)
        plain = [h for h in lab.hosts if h not in ("client", "router", "fwd")]
        srcs, dests = plain[:sources], plain[sources:sources + destinations]
        flows = {"reachability_flows": [{"from": s, "to": dests, "ports": ALL_PAIRS_PORTS} for s in srcs]}
        ours = run_diagnose(lab, ["-e", json.dumps(flows)])
    finally:
        netlab.release(pin)
    trips = ours["round_trips"]
    per_src = sorted(trips.get(h, 0) for h in srcs)
    per_dest = sorted(trips.get(h, 0) for h in dests)
    return {"sources": len(srcs), "destinations": len(dests), "ports": len(ALL_PAIRS_PORTS),
            "flows": ours["report"]["summary"]["flows"], "wall_s": ours["wall_s"],
            "controller_peak_rss_mib": ours["controller_peak_rss_mib"],
            "round_trips_per_source": {"min": per_src[0], "max": per_src[-1]},
            "round_trips_per_destination": {"min": per_dest[0], "max": per_dest[-1]},
            "lab_build_s": round(build, 2), "by_cause": ours["report"]["summary"]["by_cause"],
            "unknown": _unknown(ours["report"])}


def _unknown(report):
    """Why flows were left unknown: {"source: reason": count}."""
    out = {}
    for f in report["flows"]:
        if f["cause"] == "unknown":
            key = "%s: %s" % (f.get("source"), f.get("reason"))
            out[key] = out.get(key, 0) + 1
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[20, 50, 100])
    ap.add_argument("--skip-seeds", action="store_true")
    ap.add_argument("--all-pairs", type=int, nargs=2, metavar=("SOURCES", "DESTINATIONS"))
    a = ap.parse_args()
    os.environ.setdefault("ANSIBLE_FORKS", "20")   # the setting; lab.env() keeps it
    path = os.path.join(ROOT, "bench", "results", "diagnose.json")
    out = {}
    if os.path.exists(path):
        with open(path) as fh:
            out = json.load(fh)   # the parts not run now stay as they were measured
    out.update({"bench": "diagnose", "date": time.strftime("%Y-%m-%d"), "forks": int(os.environ.get("ANSIBLE_FORKS", "25")),
                "ports_per_host": len(SCALE_PORTS)})
    if not a.skip_seeds:
        out["seeds_vs_by_hand"] = seeds_vs_by_hand()
        print(json.dumps(out["seeds_vs_by_hand"]), flush=True)
    if a.sizes:
        out["scaling"] = []
    for size in a.sizes:
        out["scaling"].append(scaling(size))
        print(json.dumps(out["scaling"][-1]), flush=True)
    if a.all_pairs:
        out["all_pairs"] = all_pairs(*a.all_pairs)
        print(json.dumps(out["all_pairs"]), flush=True)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
