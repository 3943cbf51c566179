# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""diagnose on 20 lab hosts x 5 ports each: wall time of the whole playbook and module round
trips per host (issue 7's aim: under 60 s on these 2-core machines), side by side with what a
user would run by hand for the same raw evidence (nmap from the source + listen_ports_facts on
every destination; no verdict, no rule, no fix).

Builds its own lab (topologies/minimal.yml + 18 scale hosts = 20 hosts + the router), so it
needs the machine's lab slot to itself; tears it down after.

    .venv/bin/python bench/diagnose/bench_diagnose.py [--runs 2]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
import netlab  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    topo = os.path.join(ROOT, "tests", "lab", "topologies", "minimal.yml")
    pin = "pid:%d" % os.getpid()
    t0 = time.monotonic()
    state = netlab.acquire(topo, pin=pin, scale=18, wait=900)
    build = time.monotonic() - t0
    lab = netlab.Lab(state)
    try:
        dests = [h for h in lab.hosts if h not in ("client", "router")]
        flows = {"reachability_flows": [{"from": "client", "to": dests,
                                         "ports": ["22/tcp", "80/tcp", "443/tcp", "8080/tcp", "53/udp"]}]}
        results = []
        for run in range(a.runs):
            with tempfile.TemporaryDirectory() as tmp:
                env = lab.env()
                env.update(lab.json_env())
                argv = [lab.ansible_bin("ansible-playbook"), "-i", lab.inventory, "netdiag.reachability.diagnose",
                        "-e", json.dumps(dict(flows, reachability_report_dir=tmp))]
                t = time.monotonic()
                proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
                wall = time.monotonic() - t
                if proc.returncode != 0:
                    sys.exit("diagnose failed:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
                doc = json.loads(proc.stdout)
                per_host = {}
                for play in doc["plays"]:
                    for task in play["tasks"]:
                        for host, res in task["hosts"].items():
                            if res.get("skipped") or host == "localhost":
                                continue
                            # a loop is one round trip per item; a module's own "results" (probe) is one
                            items = res.get("results") if isinstance(res.get("results"), list) else []
                            looped = items and isinstance(items[0], dict) and "ansible_loop_var" in items[0]
                            n = len(items) if looped else 1
                            per_host[host] = per_host.get(host, 0) + n
                with open(os.path.join(tmp, "report.json")) as fh:
                    summary = json.load(fh)["summary"]
            results.append({"wall_s": round(wall, 2), "flows": summary["flows"], "by_cause": summary["by_cause"],
                            "round_trips_per_host": {"max": max(per_host.values()), "median": sorted(per_host.values())[len(per_host) // 2],
                                                     "source": per_host.get("client")}})
            print(json.dumps(results[-1]))
        baseline = [manual_baseline(lab, dests) for _run in range(a.runs)]
        print(json.dumps(baseline))
    finally:
        netlab.release(pin)
    out = {"bench": "diagnose", "hosts": len(lab.hosts) - 1, "ports_per_host": 5, "lab_build_s": round(build, 2),
           "runs": results, "manual_baseline": baseline,
           "ratio_diagnose_over_baseline": round(min(r["wall_s"] for r in results) / min(b["wall_s"] for b in baseline), 2),
           "date": time.strftime("%Y-%m-%d")}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "diagnose.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    print(json.dumps(out, indent=1))


def manual_baseline(lab, dests):
    """What a user would run instead, by hand, to collect the same raw evidence (and no verdict):
    nmap from the source to every destination port, and community.general.listen_ports_facts
    on every destination."""
    addrs = [lab.hosts[h].address for h in dests]
    t = time.monotonic()
    nmap = lab.exec("client", ["nmap", "-n", "-Pn", "-sS", "-sU", "-T4", "--reason", "-p", "T:22,80,443,8080,U:53"]
                    + addrs, timeout=600)
    nmap_s = time.monotonic() - t
    env = lab.env()
    env.update(lab.json_env())
    t = time.monotonic()
    proc = subprocess.run([lab.ansible_bin("ansible"), "-i", lab.inventory, ",".join(dests),
                           "-m", "community.general.listen_ports_facts"],
                          capture_output=True, text=True, env=env, check=False)
    facts_s = time.monotonic() - t
    if proc.returncode != 0:
        sys.exit("listen_ports_facts failed:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
    return {"wall_s": round(nmap_s + facts_s, 2), "nmap_s": round(nmap_s, 2),
            "listen_ports_facts_s": round(facts_s, 2), "nmap_ports": nmap.stdout.count("/tcp") + nmap.stdout.count("/udp")}


if __name__ == "__main__":
    main()
