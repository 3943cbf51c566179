# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""labctl up|down|status|inventory|exec — the network-namespace lab (see docs/lab.md)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(prog="labctl", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("up", help="build the lab (waits for another lab to go away)")
    p.add_argument("topology", nargs="?", default=None, help="topology YAML (default: topologies/seeds.yml)")
    p.add_argument("--scale", type=int, default=0, help="add N plain hosts (sshd + http) to the last network")
    p.add_argument("--wait", type=int, default=0, help="seconds to wait for another lab to go away")
    sub.add_parser("down", help="remove the lab and everything it made (idempotent)")
    sub.add_parser("status", help="hosts, addresses and what each runs")
    sub.add_parser("inventory", help="print the Ansible inventory of the lab")
    sub.add_parser("leftovers", help="list anything of the lab still on the machine")
    p = sub.add_parser("exec", help="run a command inside a lab host")
    p.add_argument("host")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.error("the lab needs root (network namespaces, veth, sshd)")
    try:
        if a.cmd == "up":
            state = netlab.acquire(a.topology, pin="manual", scale=a.scale, wait=a.wait)
            print(netlab.describe(state))
            print("inventory: %s" % os.path.join(state["state_dir"], "inventory.yml"))
        elif a.cmd == "down":
            secs = netlab.down()
            left = netlab.leftovers()
            print("lab down in %.2fs%s" % (secs, "" if not left else "; LEFT OVER: " + ", ".join(left)))
            return 1 if left else 0
        elif a.cmd == "status":
            state = netlab.current_lab()
            if not state:
                print("no lab is up")
                return 3
            print(netlab.describe(state))
        elif a.cmd == "inventory":
            lab = netlab.attach()
            with open(lab.inventory) as fh:
                sys.stdout.write(fh.read())
        elif a.cmd == "leftovers":
            left = netlab.leftovers()
            print("\n".join(left) if left else "nothing left")
            return 1 if left else 0
        elif a.cmd == "exec":
            cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
            proc = netlab.attach().exec(a.host, cmd, check=False)
            sys.stdout.write(proc.stdout)
            sys.stderr.write(proc.stderr)
            return proc.returncode
    except netlab.LabError as exc:
        print("labctl: %s" % exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
