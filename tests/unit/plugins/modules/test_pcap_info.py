# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pcap_info run as Ansible runs it (module file + ANSIBLE_MODULE_ARGS on stdin), on the
real lab capture in tests/unit/fixtures/pcap/."""

import os

from .. import helpers

FIX = helpers.fixture("pcap")


def run_module(args, check_mode=False):
    return helpers.run_module('pcap_info', args, check_mode)


def test_explains_the_seed_002_capture_in_check_mode():
    res = run_module({"path": os.path.join(FIX, "client-eth0.pcap"), "port": 80}, check_mode=True)
    assert "failed" not in res, res.get("msg")
    assert res["changed"] is False
    flows = dict((f["dst"], f) for f in res["flows"])
    assert flows["10.200.2.15"]["reason"] == "host-prohibited"
    assert flows["10.200.2.15"]["icmp"]["name"] == "destination-unreachable/host-prohibited"
    assert flows["10.200.2.18"]["reason"] == "no-response"
    assert res["summary"]["flows"] == 5 and res["packets"] == 36
    # no file attributes leaking in (exit_json adds owner/mode when a result has "path")
    assert "owner" not in res and "mode" not in res


def test_not_a_capture_fails_with_the_file_named():
    readme = os.path.join(FIX, "README.md")
    res = run_module({"path": readme})
    assert res["failed"] is True and readme in res["msg"] and "not a pcap or pcapng file" in res["msg"]


def test_bad_host_fails_with_the_value_named():
    res = run_module({"path": os.path.join(FIX, "client-eth0.pcap"), "host": "10.0.0.256"})
    assert res["failed"] is True and "'10.0.0.256'" in res["msg"]
