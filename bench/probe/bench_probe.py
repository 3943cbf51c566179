# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: netdiag.reachability probe vs ``nmap -sS -T4 --reason`` vs an
``ansible.builtin.wait_for`` loop, on 1,000 TCP ports of one server in scratch network
namespaces (ndx-pr-b*, 10.200.200.0/24 + 10.200.201.0/24, not connected to anything else):
250 open, 250 closed (no listener), 250 rejected (nftables admin-prohibited, ICMP
rate-limited by the server's kernel) and 250 dropped.  Needs root, nmap, ansible in .venv.

    sudo .venv/bin/python bench/probe/bench_probe.py [--wait-for-sample 40] [--json out.json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
C, R, S = "ndx-pr-bc", "ndx-pr-br", "ndx-pr-bs"
SERVER = "10.200.201.2"
BASE = 20000
KINDS = [("open", 0), ("closed", 250), ("reject", 500), ("drop", 750)]


def kind_of(port):
    off = port - BASE
    return "open" if off < 250 else "closed" if off < 500 else "reject" if off < 750 else "drop"


RULES = """
table inet ndxprb {
  chain input {
    type filter hook input priority filter; policy accept;
    tcp dport %d-%d reject with icmp type admin-prohibited
    tcp dport %d-%d drop
  }
}
""" % (BASE + 500, BASE + 749, BASE + 750, BASE + 999)

LISTENER = textwrap.dedent("""
    import socket, time
    socks = []
    for p in range(%d, %d):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", p)); s.listen(16); socks.append(s)
    open("/tmp/ndx-pr-bench-ready", "w").close()
    time.sleep(100000)
""") % (BASE, BASE + 250)


def sh(*argv, **kw):
    check = kw.pop("check", True)
    return subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=check, **kw)


def down():
    for ns in (C, R, S):
        if sh("ip", "netns", "pids", ns, check=False).returncode == 0:
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", ns, check=False)


def up():
    down()
    for ns in (C, R, S):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", "ndxprb-c0", "netns", C, "type", "veth", "peer", "name", "ndxprb-r0", "netns", R)
    sh("ip", "link", "add", "ndxprb-s0", "netns", S, "type", "veth", "peer", "name", "ndxprb-r1", "netns", R)
    for ns, dev, addr in ((C, "ndxprb-c0", "10.200.200.2/24"), (R, "ndxprb-r0", "10.200.200.1/24"),
                          (R, "ndxprb-r1", "10.200.201.1/24"), (S, "ndxprb-s0", "10.200.201.2/24")):
        sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
    sh("ip", "-n", C, "route", "add", "default", "via", "10.200.200.1")
    sh("ip", "-n", S, "route", "add", "default", "via", "10.200.201.1")
    sh("ip", "netns", "exec", R, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    sh("ip", "netns", "exec", S, "nft", "-f", "-", input=RULES)
    if os.path.exists("/tmp/ndx-pr-bench-ready"):
        os.unlink("/tmp/ndx-pr-bench-ready")
    subprocess.Popen(["ip", "netns", "exec", S, "/usr/bin/python3", "-c", LISTENER],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 20
    while not os.path.exists("/tmp/ndx-pr-bench-ready"):
        if time.time() > end:
            raise RuntimeError("listeners did not come up")
        time.sleep(0.1)
    os.unlink("/tmp/ndx-pr-bench-ready")


RUNNER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, %r)
    from ansible_collections.netdiag.reachability.plugins.module_utils.probe import run as probe
    args = json.loads(sys.argv[1])
    print(json.dumps(probe.probe(args.pop("targets"), **args)))
""") % os.path.join(ROOT, ".collections")


def run_probe(engine, user=None):
    argv = ["ip", "netns", "exec", C]
    if user:
        argv += ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    args = {"targets": [{"host": SERVER, "ports": ["%d-%d" % (BASE, BASE + 999)]}], "engine": engine}
    start = time.monotonic()
    out = sh(*(argv + ["/usr/bin/python3", "-c", RUNNER, json.dumps(args)]), timeout=600)
    wall = time.monotonic() - start
    res = json.loads(out.stdout)
    return wall, dict((r["port"], r) for r in res["results"]), res


def run_nmap():
    start = time.monotonic()
    out = sh("ip", "netns", "exec", C, "nmap", "-sS", "-T4", "--reason", "-Pn", "-n",
             "-p", "%d-%d" % (BASE, BASE + 999), "-oX", "-", SERVER, timeout=600)
    wall = time.monotonic() - start
    ports = {}
    root = ET.fromstring(out.stdout)
    for port in root.iter("port"):
        st = port.find("state")
        ports[int(port.get("portid"))] = (st.get("state"), st.get("reason"))
    # nmap folds "ignored" ports into <extraports>: recover them from the reasons summary
    for extra in root.iter("extraports"):
        state = extra.get("state")
        for reasons in extra.iter("extrareasons"):
            for rng in (reasons.get("ports") or "").split(","):
                if not rng:
                    continue
                lo, dummy, hi = rng.partition("-")
                for p in range(int(lo), int(hi or lo) + 1):
                    ports[p] = (state, reasons.get("reason"))
    return wall, ports


def run_wait_for(sample):
    """ansible.builtin.wait_for (timeout 1 s) over a sample of each kind, one port after another."""
    ports = []
    for _kind, off in KINDS:
        ports += [BASE + off + i for i in range(sample // 4)]
    with tempfile.TemporaryDirectory(prefix="ndx-pr-bench-") as tmp:
        play = os.path.join(tmp, "wait_for.yml")
        with open(play, "w") as fh:
            fh.write(textwrap.dedent("""
                - hosts: localhost
                  connection: local
                  gather_facts: false
                  tasks:
                    - ansible.builtin.wait_for:
                        host: %s
                        port: "{{ item }}"
                        timeout: 1
                      loop: %s
                      ignore_errors: true
                      register: w
                    - ansible.builtin.debug:
                        msg: "OPEN {{ w.results | rejectattr('failed', 'defined') | map(attribute='item') | list }}"
            """) % (SERVER, json.dumps(ports)))
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
        start = time.monotonic()
        out = sh("ip", "netns", "exec", C, os.path.join(ROOT, ".venv", "bin", "ansible-playbook"),
                 "-e", "ansible_python_interpreter=/usr/bin/python3", play, env=env, cwd=ROOT, timeout=3600)
        wall = time.monotonic() - start
    return wall, len(ports), out.stdout


NMAP_EQUIV = {"syn-ack": "syn-ack", "reset": "reset", "admin-prohibited": "admin-prohibited",
              "no-response": "no-response"}


def compare(probe_ports, nmap_ports):
    agree = total = 0
    disagreements = []
    for port in range(BASE, BASE + 1000):
        n_state, n_reason = nmap_ports.get(port, (None, None))
        p = probe_ports[port]
        if n_reason == "no-response" or n_reason is None:
            continue     # "where a reply exists"
        total += 1
        if (p["state"], p["reason"]) == (n_state, n_reason):
            agree += 1
        else:
            disagreements.append((port, kind_of(port), (n_state, n_reason), (p["state"], p["reason"])))
    return agree, total, disagreements


def summarize(ports):
    out = {}
    for port, r in ports.items():
        key = "%s %s/%s%s" % (kind_of(port), r["state"], r["reason"], " rate_limited" if r["rate_limited"] else "")
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wait-for-sample", type=int, default=40, help="ports for the wait_for loop (0: skip)")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces, raw sockets, nmap -sS)")
    report = {}
    try:
        up()
        time.sleep(6)
        nmap_wall, nmap_ports = run_nmap()
        nmap_summary = {}
        for port, (st, reason) in nmap_ports.items():
            k = "%s %s/%s" % (kind_of(port), st, reason)
            nmap_summary[k] = nmap_summary.get(k, 0) + 1
        report["nmap"] = {"wall_s": round(nmap_wall, 2), "ports": dict(sorted(nmap_summary.items()))}
        for name, engine, user in (("probe_raw", "raw", None), ("probe_connect_nobody", "auto", "nobody")):
            time.sleep(6)   # same starting point for the server's ICMP token bucket
            wall, ports, res = run_probe(engine, user)
            agree, total, dis = compare(ports, nmap_ports)
            rejects_called_drops = sum(1 for p, r in ports.items() if kind_of(p) == "reject"
                                       and r["reason"] == "no-response" and not r["rate_limited"])
            report[name] = {
                "engine": res["engine"], "wall_s": round(wall, 2), "elapsed_s": res["elapsed_s"],
                "ratio_vs_nmap": round(wall / nmap_wall, 2),
                "agreement_where_nmap_got_a_reply": "%d/%d" % (agree, total),
                "disagreements": dis[:10],
                "rejects_reported_as_plain_drops": rejects_called_drops,
                "ports": summarize(ports),
            }
        if args.wait_for_sample:
            wall, n, _out = run_wait_for(args.wait_for_sample)
            report["wait_for_loop"] = {"ports": n, "wall_s": round(wall, 2),
                                       "extrapolated_1000_ports_s": round(wall / n * 1000, 1)}
    finally:
        down()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
