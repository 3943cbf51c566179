"""Make ``ansible_collections.netdiag.reachability`` importable for the tests.

``scripts/setup.sh`` links this checkout at
``.collections/ansible_collections/netdiag/reachability``; unit tests import the
library exactly as modules do on a target.
"""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
link = os.path.join(COLLECTIONS, "ansible_collections", "netdiag", "reachability")
if not os.path.exists(link):  # setup not run yet (e.g. pytest called directly)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(os.path.join("..", "..", ".."), link)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (CI=true or NETDIAG_STRICT=1) a skipped test is a failure: a missing dependency or
    a lab that could not be built must not pass as green."""
    outcome = yield
    report = outcome.get_result()
    strict = os.environ.get("NETDIAG_STRICT") == "1" or os.environ.get("CI") == "true"
    if strict and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = "skipped under CI=true/NETDIAG_STRICT=1 (a skip is a failure in CI): %s" % (reason,)
