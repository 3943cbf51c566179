"""The ``lab`` fixture: the seeds lab, built once per test session, always torn down.

Teardown runs on success, failure, Ctrl-C (pytest turns SIGINT into KeyboardInterrupt and
still finalises session fixtures) and SIGTERM (turned into KeyboardInterrupt below); an
``atexit`` hook is the last line of defence.
"""
import atexit
import os
import signal
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
import netlab  # noqa: E402

TOPOLOGY = os.environ.get("NETDIAG_LAB_TOPOLOGY", os.path.join(ROOT, "tests", "lab", "topologies", "seeds.yml"))


def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(pytest.mark.lab)


def _sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.fail("the lab tests need root (network namespaces); run them as root, e.g. `make test`")
    keep = os.environ.get("NETDIAG_LAB_KEEP") == "1"
    previous = signal.signal(signal.SIGTERM, _sigterm)
    pin = "manual" if keep else "pid:%d" % os.getpid()
    held = {"pin": None}

    def teardown():
        # the lab goes down when the last user lets go (another session or `labctl up` may hold it)
        if held["pin"] and not keep:
            netlab.release(held["pin"])
        held["pin"] = None

    atexit.register(teardown)
    try:
        state = netlab.acquire(TOPOLOGY, pin=pin, wait=900)
        held["pin"] = pin
        yield netlab.Lab(state)
    finally:
        teardown()
        signal.signal(signal.SIGTERM, previous)
