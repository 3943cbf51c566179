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
    existing = netlab.current_lab()
    state = netlab.up(a.topology, wait=60)
    ours = existing is None or existing.get("status") != "up"
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
        if not ours:
            print("the lab was already up before the demo: left as it was")
        elif a.keep:
            print("lab left up (tests/lab/labctl status | exec HOST -- CMD | down)")
        else:
            netlab.down()
            print("lab torn down")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
