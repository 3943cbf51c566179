# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: netdiag.reachability.listeners_info vs community.general.listen_ports_facts.

    .venv/bin/python bench/listeners/bench_listeners.py [--host healthy] [--sockets 2000] [--runs 7]

Uses the seeds lab (builds it, and tears it down after, when none is up) and needs community.general + ansible.posix in the venv
(``pip install ansible``).  Opens SOCKETS listening sockets inside the lab host (3/4 TCP,
1/4 UDP, one holder process), then, in one ansible-playbook run over the host's ssh, runs the
two modules RUNS times each, alternating which goes first, after one warm-up each.  Task
durations come from the ansible.posix.json callback (the connection is already up, so a task's
time is transfer + module run).  Writes bench/results/listeners-<time>.json and prints a
Markdown table with the median ratio (ours / theirs).
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
import netlab  # noqa: E402

HOLDER = r'''
import resource, socket, sys, time
n, base = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n + 256), max(hard, n + 256)))
keep = []
for i in range(n):
    if i % 4 == 3:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", base + i))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("0.0.0.0", base + i))
        s.listen(128)
    keep.append(s)
sys.stdout.write("READY\n"); sys.stdout.flush()
sys.stdin.read()   # hold the sockets until the bench closes our stdin
'''

OURS = "netdiag.reachability.listeners_info"
THEIRS = "community.general.listen_ports_facts"


def playbook(host, runs):
    tasks = []
    for i in range(runs + 1):
        pair = [(OURS, {"include_process": True}), (THEIRS, {})]
        if i % 2:
            pair.reverse()
        for module, args in pair:
            tasks.append({"name": "%s %s" % ("warmup" if i == 0 else "run%d" % i, module),
                          module: args, "register": "r%d_%s" % (i, module.rsplit(".", maxsplit=1)[-1])})
    tasks.append({"name": "sizes", "ansible.builtin.debug": {"msg": {
        "ours": "{{ r1_listeners_info.listeners | length }}",
        "theirs": "{{ (ansible_facts.tcp_listen | length) + (ansible_facts.udp_listen | length) }}"}}})
    return [{"hosts": host, "gather_facts": False, "tasks": tasks}]


def seconds(duration):
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return (datetime.datetime.strptime(duration["end"], fmt)
            - datetime.datetime.strptime(duration["start"], fmt)).total_seconds()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="healthy")
    ap.add_argument("--sockets", type=int, default=2000)
    ap.add_argument("--base-port", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    existing = netlab.current_lab()
    built = existing is None or existing.get("status") != "up"
    lab = netlab.Lab(netlab.up(os.path.join(ROOT, "tests", "lab", "topologies", "seeds.yml"), wait=900))
    try:
        run(lab, a)
    finally:
        if built:  # leave a lab someone else built as it was
            netlab.down()


def run(lab, a):
    holder = subprocess.Popen(
        ["nsenter", "--target", str(lab.sshd_pid(a.host)), "--net", "--mount", "--uts", "--",
         "/usr/bin/python3", "-c", HOLDER, str(a.sockets), str(a.base_port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if holder.stdout.readline().strip() != "READY":
            sys.exit("the socket holder did not start on %s" % a.host)
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            json.dump(playbook(a.host, a.runs), f)
            path = f.name
        env = lab.env()
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
        env["ANSIBLE_LOAD_CALLBACK_PLUGINS"] = "1"
        proc = subprocess.run([lab.ansible_bin("ansible-playbook"), "-i", lab.inventory, path],
                              capture_output=True, text=True, env=env, timeout=3600, check=False)
        os.unlink(path)
        proc_rc, proc_err = proc.returncode, proc.stderr[-2000:]
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            sys.exit("ansible-playbook printed no JSON (rc %d)\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr))
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)

    times = {OURS: [], THEIRS: []}
    sizes = None
    for task in data["plays"][0]["tasks"]:
        name = task["task"]["name"]
        res = task["hosts"][a.host]
        if res.get("failed") or res.get("unreachable"):
            sys.exit("task %r failed: %s" % (name, res.get("msg")))
        if name == "sizes":
            sizes = res["msg"]
            continue
        if name.startswith("warmup"):
            continue
        module = name.split(" ", 1)[1]
        times[module].append(seconds(task["task"]["duration"]))

    if sizes is None or len(times[OURS]) != a.runs or len(times[THEIRS]) != a.runs:
        sys.exit("the playbook stopped early (rc %d): %d/%d runs, sizes %s\n%s"
                 % (proc_rc, len(times[OURS]), len(times[THEIRS]), sizes, proc_err))
    ours, theirs = statistics.median(times[OURS]), statistics.median(times[THEIRS])
    result = {
        "host": a.host, "sockets_opened": a.sockets, "runs": a.runs,
        "listeners_reported": sizes,
        "seconds": times,
        "median": {OURS: ours, THEIRS: theirs},
        "ratio_ours_over_theirs": ours / theirs,
        "when": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    out = a.out or os.path.join(ROOT, "bench", "results", "listeners-%s.json"
                                % datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%S"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print("| module | median task time (s), %d runs | all runs (s) |" % a.runs)
    print("|---|---|---|")
    for module in (OURS, THEIRS):
        print("| %s | %.3f | %s |" % (module, result["median"][module],
                                      ", ".join("%.2f" % t for t in times[module])))
    print("\nratio ours/theirs (median): %.3f; listeners reported: %s; results: %s"
          % (result["ratio_ours_over_theirs"], sizes, out))


if __name__ == "__main__":
    main()
