"""Scenario labs (tests/lab/scenarios.py): root only; each lab is torn down when its test ends,
also on failure, Ctrl-C and SIGTERM (turned into KeyboardInterrupt here)."""
import os
import signal
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))


def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(pytest.mark.lab)


def _sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


@pytest.fixture(autouse=True, scope="session")
def _root_and_sigterm():
    if os.geteuid() != 0:
        pytest.fail("the scenario labs need root (network namespaces); run them as root, e.g. `make test`")
    previous = signal.signal(signal.SIGTERM, _sigterm)
    yield
    signal.signal(signal.SIGTERM, previous)
