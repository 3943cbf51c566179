"""The ``lab`` fixture: the seeds lab, built once per test session, always torn down.

Teardown runs on success, failure, Ctrl-C (pytest turns SIGINT into KeyboardInterrupt and
still finalises session fixtures) and SIGTERM (turned into KeyboardInterrupt below); an
``atexit`` hook is the last line of defence.
"""
import atexit
import http.client
import hashlib
import os
import re
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


# firewalld rewrites a zone file on every permanent change: compare the zones' content (C14N sorts attributes)
_ZONES_C14N = ("python3 -c 'import glob, xml.etree.ElementTree as E; "
               "[print(f, E.canonicalize(from_file=f, strip_text=True)) for f in sorted(glob.glob(\"/etc/firewalld/zones/*.xml\"))]'")


def state_hash(lab, host):
    """A hash of every firewall's configuration on ``host`` (counters left out)."""
    text = lab.exec(host, ["sh", "-c", "nft list ruleset; iptables-save 2>/dev/null | grep -v '^#'; "
                           "iptables-legacy-save 2>/dev/null | grep -v '^#'; " + _ZONES_C14N + "; "
                           "cat /etc/ufw/user.rules /etc/ufw/user6.rules 2>/dev/null"]).stdout
    text = re.sub(r"\[\d+:\d+\]|counter packets \d+ bytes \d+", "", text)
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def restore(lab):
    """Register (host, undo argv list); on teardown run the undo commands and check the host is as before."""
    saved = []

    def register(host, undo):
        saved.append((host, undo, state_hash(lab, host)))
    yield register
    errors = []
    for host, undo, before in saved:
        for argv in undo:
            lab.exec(host, argv, check=False)
        if state_hash(lab, host) != before:
            errors.append(host)
    assert not errors, "state not restored on %s" % errors


def moto_reset(host_port):
    """Empty a moto server's account: moto keeps its backends per process, not per server, so a
    test module's VPCs and interfaces would otherwise still be there for the next module."""
    conn = http.client.HTTPConnection(*host_port, timeout=10)
    try:
        conn.request("POST", "/moto-api/reset")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
