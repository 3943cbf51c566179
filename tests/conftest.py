"""Make ``ansible_collections.netdiag.reachability`` importable for the tests.

``scripts/setup.sh`` links this checkout at
``.collections/ansible_collections/netdiag/reachability``; unit tests import the
library exactly as modules do on a target.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
link = os.path.join(COLLECTIONS, "ansible_collections", "netdiag", "reachability")
if not os.path.exists(link):  # setup not run yet (e.g. pytest called directly)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(os.path.join("..", "..", ".."), link)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures")
