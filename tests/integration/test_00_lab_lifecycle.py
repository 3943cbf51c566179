"""Build and tear down a 20-host lab before the seeds lab comes up: nothing may be left."""
import json
import os
import shutil
import time

import pytest

from conftest import netlab


@pytest.fixture
def no_lab():
    if netlab.current_lab() is not None:
        pytest.skip("a lab is already up on this machine (this test needs the machine to itself)")


def test_twenty_host_lab_builds_in_seconds_and_leaves_nothing(no_lab, tmp_path):
    topo = os.path.join(os.path.dirname(netlab.DEFAULT_TOPOLOGY), "minimal.yml")
    t0 = time.monotonic()
    try:
        state = netlab.up(topo, scale=18)
        built = time.monotonic() - t0
        lab = netlab.Lab(state)
        assert len(lab.hosts) == 21  # 20 hosts + router
        # every host really is up: its own sshd and http listener answer from the root namespace
        for h in lab.hosts.values():
            assert netlab.socket_open(h.address, 22), h
        for h in lab.hosts.values():
            if h.name.startswith("node"):
                assert netlab.socket_open(h.address, 80), h
        assert lab.exec("node07", ["hostname"]).stdout.strip() == "node07"
    finally:
        t1 = time.monotonic()
        netlab.down()
        torn = time.monotonic() - t1
    assert netlab.leftovers() == []
    print("\n20-host lab: build %.2fs, teardown %.2fs" % (built, torn))
    # a second down is harmless
    netlab.down()
    assert netlab.leftovers() == []


def test_bad_topology_gets_a_clear_error_and_builds_nothing(no_lab, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("networks:\n  - {name: n, subnet: 192.0.2.0/24, gateway: 192.0.2.1}\nhosts: []\n")
    with pytest.raises(netlab.LabError, match="192.0.2.0/24 is outside"):
        netlab.up(str(bad))
    assert netlab.leftovers() == []


def test_state_left_by_an_earlier_boot_does_not_block_the_lab(no_lab):
    # /run is on disk here: a lab saved before a reboot (or on the disk image CI starts from)
    # leaves its state and overlays behind, but none of its namespaces or processes
    sd = os.path.join(netlab.STATE_ROOT, netlab.PREFIX)
    overlay = "/etc/netns/%s-ghost" % netlab.PREFIX
    os.makedirs(sd)
    os.makedirs(overlay)
    with open(os.path.join(sd, "state.json"), "w") as fh:
        json.dump({"prefix": netlab.PREFIX, "status": "up", "pins": ["manual"], "state_dir": sd,
                   "boot_id": "00000000-0000-0000-0000-000000000000",
                   "topology": {"path": "/elsewhere/seeds.yml", "hosts": [], "router": {"name": "router"}}}, fh)
    try:
        assert netlab.current_lab() is None
        assert "/etc/netns/%s-ghost" % netlab.PREFIX in netlab.leftovers()
        netlab.down()
        assert netlab.leftovers() == []
    finally:
        shutil.rmtree(sd, ignore_errors=True)
        shutil.rmtree(overlay, ignore_errors=True)
