#!/usr/bin/env bash
# All benchmarks, one after the other (each lab benchmark needs the machine's lab slot), side by
# side with the tools a user would pick instead. Results: bench/results/*.json; docs/benchmarks.md
# reports them as ratios.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
.venv/bin/pip install -q -r requirements/bench.txt
export PATH="$here/.venv/bin:$PATH" ANSIBLE_CONFIG="$here/ansible.cfg"
mkdir -p bench/results
echo "== rule evaluator (5,000 rules, 100,000 packets)"; python bench/rules/bench_evaluator.py | tee bench/results/rules.txt
echo "== diagnose (seeds vs by hand; 20/50/100 hosts x 5 ports; all pairs 10 x 50 x 3)"
python bench/diagnose/bench_diagnose.py --all-pairs 10 50
echo "== compiling saved rulesets (deep jumps, kube-proxy, large sets)"
python bench/rules/bench_compile.py --runs 3 --json "bench/results/compile-$(date +%F).json"
echo "== the controller's share at 1,000-10,000 flows"
python bench/controller/bench_controller.py --sizes 1000,2500,5000,10000 --shapes grid,fleet --repeat 3 \
  --out "bench/results/controller-$(date +%F).json"
echo "== probe vs nmap vs wait_for (1,000 ports)";      python bench/probe/bench_probe.py --json bench/results/probe.json
echo "== listeners_info vs listen_ports_facts (2,000 sockets)"; python bench/listeners/bench_listeners.py
