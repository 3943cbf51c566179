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
echo "== diagnose (20 hosts x 5 ports)";               python bench/diagnose/bench_diagnose.py
echo "== probe vs nmap vs wait_for (1,000 ports)";      python bench/probe/bench_probe.py --json bench/results/probe.json
echo "== listeners_info vs listen_ports_facts (2,000 sockets)"; python bench/listeners/bench_listeners.py
