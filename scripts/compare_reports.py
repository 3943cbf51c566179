# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare two diagnose reports (report.json) flow by flow, apart from what differs between
two runs on the same lab by nature: round-trip times and the process ids of the listeners
(a lab built again starts its listeners again, also where a reason text names them).

    scripts/compare_reports.py BEFORE/report.json AFTER/report.json

Prints every other difference as ``flow: key path: before -> after`` and exits 1 when there
is one, 0 when the reports say the same.  Used to check that a refactoring changed no verdict.
"""
import json
import re
import sys

VOLATILE = {"rtt_ms", "pids", "pid"}
PID_TEXT = re.compile(r"\bpid \d+(?:,\d+)*")


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    if isinstance(value, str):
        return PID_TEXT.sub("pid N", value)
    return value


def _key(flow):
    return "%s -> %s %s/%s" % (flow.get("source"), flow.get("address"), flow.get("port"), flow.get("protocol"))


def _diff(path, a, b, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            _diff("%s.%s" % (path, k) if path else k, a.get(k), b.get(k), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff("%s[%d]" % (path, i), x, y, out)
    elif a != b:
        out.append("%s: %s -> %s" % (path, json.dumps(a, sort_keys=True)[:200], json.dumps(b, sort_keys=True)[:200]))


def compare(before, after):
    out = []
    flows_a = {_key(f): _strip(f) for f in before.get("flows") or []}
    flows_b = {_key(f): _strip(f) for f in after.get("flows") or []}
    for key in sorted(set(flows_a) | set(flows_b)):
        diffs = []
        _diff("", flows_a.get(key), flows_b.get(key), diffs)
        out += ["%s: %s" % (key, d) for d in diffs]
    rest = []
    _diff("", _strip({k: v for k, v in before.items() if k != "flows"}), _strip({k: v for k, v in after.items() if k != "flows"}), rest)
    return out + ["report: %s" % d for d in rest]


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    with open(argv[1]) as fa, open(argv[2]) as fb:
        diffs = compare(json.load(fa), json.load(fb))
    for line in diffs:
        print(line)
    print("%d flow(s) compared, %d difference(s)" % (len(json.load(open(argv[1])).get("flows") or []), len(diffs)))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
