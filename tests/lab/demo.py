# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The README's first command (`make demo`): build the seed lab, show its hosts and what
each one runs, run the netdiag.reachability.diagnose playbook over the seed scenarios
(tests/lab/flows/seeds.yml), print the summary and the path of the HTML report, and take
the lab down (``--keep`` leaves it up to explore).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import netlab  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", action="store_true", help="leave the lab up to explore (tests/lab/labctl down removes it)")
    ap.add_argument("--topology", default=netlab.DEFAULT_TOPOLOGY)
    ap.add_argument("--flows", default=os.path.join(HERE, "flows", "seeds.yml"))
    ap.add_argument("--report-dir", default=os.path.join(ROOT, "artifacts", "demo-report"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("demo: the lab needs root (network namespaces)")
    pin = "manual" if a.keep else "pid:%d" % os.getpid()
    state = netlab.acquire(a.topology, pin=pin, wait=60)
    ok = False
    try:
        lab = netlab.Lab(state)
        print(netlab.describe(state))
        print()
        print("running: ansible-playbook -i %s netdiag.reachability.diagnose -e @%s" % (lab.inventory, a.flows))
        proc = subprocess.run([lab.ansible_bin("ansible-playbook"), "-i", lab.inventory, "netdiag.reachability.diagnose",
                               "-e", "@" + a.flows, "-e", json.dumps({"reachability_report_dir": a.report_dir})],
                              env=lab.env(), check=False, capture_output=True, text=True)
        ok = proc.returncode == 0
        if not ok:
            print(proc.stdout[-4000:] + proc.stderr[-2000:])
        else:
            with open(os.path.join(a.report_dir, "report.json")) as fh:
                report = json.load(fh)
            print()
            for line in _summary(report):
                print(line)
            print()
            print("reports: %s/report.html (and report.md, report.json)" % a.report_dir)
    finally:
        if a.keep:
            print("lab left up (tests/lab/labctl status | exec HOST -- CMD | down)")
        elif netlab.release(pin):
            print("lab torn down")
        else:
            print("the lab is still in use by someone else: left up")
    return 0 if ok else 1


def _summary(report):
    sys.path.insert(0, os.path.join(ROOT, ".collections"))
    from ansible_collections.netdiag.reachability.plugins.plugin_utils.report import summary_lines
    return summary_lines(report)


if __name__ == "__main__":
    sys.exit(main())
