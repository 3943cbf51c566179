# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The README's first command (`make demo`): build the seed lab, show its hosts and what
each one runs, reach every host with Ansible over ssh, run what the collection can do
today against the seed scenarios, and take the lab down (``--keep`` leaves it up).
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
        playbook = os.path.join(ROOT, "playbooks", "demo.yml")
        env = lab.env()
        proc = subprocess.run([lab.ansible_bin("ansible-playbook"), "-i", lab.inventory, playbook],
                              env=env, check=False)
        ok = proc.returncode == 0
        print()
        print("inventory of the lab: %s" % lab.inventory)
    finally:
        if a.keep:
            print("lab left up (tests/lab/labctl status | exec HOST -- CMD | down)")
        elif netlab.release(pin):
            print("lab torn down")
        else:
            print("the lab is still in use by someone else: left up")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
