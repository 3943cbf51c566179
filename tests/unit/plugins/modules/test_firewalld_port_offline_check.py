# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""firewalld_port offline (firewalld not running) says what it did, and only that: check mode wrote nothing and
must not claim an edit; a run with nothing to change edited nothing."""

from . import test_firewalld_port as offline_tests
from .test_firewalld_port import offline, run, zone_file

host = offline_tests.host   # the fixture: the captured host's /etc/firewalld in private namespaces, no daemon

CLAIM = ": edited the permanent configuration offline"   # after the reason firewalld was found not running


@offline
def test_check_mode_offline_claims_no_edit(host):
    before = zone_file(host)
    result = run(host, {"zone": "public", "ports": ["9000/tcp"]}, check_mode=True)
    assert result["changed"] is True, result.get("msg")
    assert zone_file(host) == before
    assert ": nothing was written (check mode); a run without check mode would have edited" in result["notes"][0]
    assert not any(CLAIM in note for note in result["notes"]), result["notes"]


@offline
def test_a_real_offline_run_says_it_edited_and_a_second_one_that_nothing_was_needed(host):
    result = run(host, {"zone": "public", "ports": ["9000/tcp"]})
    assert result["changed"] is True and CLAIM in result["notes"][0], result["notes"]
    again = run(host, {"zone": "public", "ports": ["9000/tcp"]})
    assert again["changed"] is False
    assert again["notes"][0].endswith(": read the permanent configuration offline; it already has what was asked")
    assert not any(CLAIM in note for note in again["notes"]), again["notes"]
