"""Random scenarios with the truth known by construction: zero wrong explanations.

Fixed seeds run in CI (one lab per seed, about a minute each); `make scenarios SEED=.. COUNT=..`
runs others.  A finding is wrong when its cause, culprit host, rule, zone or layer differs from
how the scenario was built, or its fix cannot help; `unknown` passes only where the catalogue
says the evidence cannot decide.  The figures of each run are written to
artifacts/scenarios/seed-N/judged.json (docs/accuracy.md has the published ones).
"""
import os

import pytest

import netlab
import scenarios

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# (seed, router managed?, kernel trace?): both kinds of path, every seed a fresh draw from the catalogue;
# one seed with the kernel as witness, whose answers must be as right as the others
CI_SEEDS = [(101, True, False), (102, False, False), (103, True, True)]
COUNT = 24


CI_IDS = ["seed%d-%s%s" % (s, "managed" if m else "unmanaged", "-kernel" if k else "") for s, m, k in CI_SEEDS]


@pytest.mark.parametrize("seed,managed,kernel", CI_SEEDS, ids=CI_IDS)
def test_no_wrong_explanation(seed, managed, kernel):
    res = scenarios.run(seed, COUNT, os.path.join(ROOT, "artifacts", "scenarios", "seed-%d" % seed), managed, kernel=kernel)
    scenarios.print_result(res)
    assert not netlab.leftovers(), "the scenario lab left something behind"
    bad = ["%s %s: %s" % (s["id"], "+".join(s["faults"]), why) for s, outcome, why in res["judged"]
           if outcome in ("wrong", "unknown")]
    assert not bad, "\n".join(bad)
    # a run where everything is unknown would pass the line above: most scenarios must be decided
    right = sum(1 for _s, outcome, _w in res["judged"] if outcome == "right")
    assert right >= 0.75 * COUNT, "only %d of %d scenarios decided" % (right, COUNT)
