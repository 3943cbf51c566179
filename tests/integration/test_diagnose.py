"""The diagnose and audit playbooks against the seeds lab, run as a user runs them:
every seed scenario gets the right cause and culprit, healthy flows are ok, audit fails on
exactly the flows that differ from expect, and nothing on any host changes."""
import json
import os

import pytest

from conftest import state_hash

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FLOWS = os.path.join(ROOT, "tests", "lab", "flows", "seeds.yml")

EXPECTED = {  # (address, port): (cause, text in the culprit, text in the fix)
    ("10.200.2.10", 80): ("ok", None, None),
    ("10.200.2.11", 8000): ("ok", None, None),
    ("10.200.2.12", 8000): ("ok", None, None),
    ("10.200.2.11", 80): ("host_firewall", "filter_IN_public", "firewall-cmd --zone=public --add-port=80/tcp"),
    ("10.200.2.12", 80): ("host_firewall", "IN_public", "firewall-cmd --zone=public --add-port=80/tcp"),
    ("10.200.2.13", 8080): ("loopback_only", "127.0.0.1", "instead of 127.0.0.1"),
    ("10.200.2.14", 53): ("no_listener", "nothing listens on port 53/udp", None),
    ("10.200.2.14", 5353): ("ok", None, None),
    ("10.200.2.15", 80): ("host_firewall", "icmp-host-prohibited", "-I INPUT 1 -p tcp --dport 80 -j ACCEPT"),
    ("10.200.2.16", 3306): ("host_firewall", "--dport 3306 -j DROP", "iptables-legacy"),
    ("10.200.2.17", 80): ("host_firewall", "ufw default incoming policy: deny", "ufw allow from 10.200.1.10 to any port 80 proto tcp"),
    ("10.200.2.18", 80): ("host_firewall", "tcp dport 80 drop", "nft insert rule inet filter input position"),
    ("10.200.2.10", 8081): ("path_block", "tcp dport 8081 drop", "nft insert rule inet lab forward"),
    ("10.200.2.10", 8082): ("path_block", "10.200.1.1 rejects", "nft insert rule inet lab forward"),
    ("10.200.1.1", 8080): ("ok", None, None),
    ("10.200.1.1", 8088): ("nat", "dnat to 10.200.2.10:81", "point the port mapping"),
    ("10.200.2.10", 9999): ("no_listener", "nothing listens on port 9999/tcp", None),
}


def _state_hashes(lab):
    """What diagnose must never change: every host's firewall rules and configuration."""
    return {name: state_hash(lab, name) for name in lab.hosts}


@pytest.fixture(scope="module")
def diagnosed(lab, tmp_path_factory):
    before = _state_hashes(lab)
    rdir = tmp_path_factory.mktemp("report")
    proc = lab.playbook("netdiag.reachability.diagnose", extra_vars={"reachability_report_dir": str(rdir)},
                        extra_args=["-e", "@" + FLOWS])
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    with open(rdir / "report.json") as fh:
        report = json.load(fh)
    return {"report": report, "dir": rdir, "stdout": proc.stdout, "before": before}


def test_every_seed_scenario_gets_the_right_cause_culprit_and_fix(diagnosed):
    flows = {(f["address"], f["port"]): f for f in diagnosed["report"]["flows"]}
    assert set(flows) == set(EXPECTED)
    for key, (cause, culprit, fix) in EXPECTED.items():
        f = flows[key]
        assert f["cause"] == cause, (key, f["cause"], f["culprit"], f["evidence"].get("observed"))
        if culprit:
            assert culprit in json.dumps(f["culprit"]), (key, f["culprit"])
        if fix:
            assert fix in json.dumps(f["fix"]), (key, f["fix"])


def test_reports_are_written_and_the_run_ends_with_a_summary(diagnosed):
    rdir = diagnosed["dir"]
    rep = diagnosed["report"]
    assert rep["schema"] == "netdiag.reachability/report" and rep["version"] == 1
    assert rep["summary"]["flows"] == len(EXPECTED)
    md = (rdir / "report.md").read_text()
    assert "| client | fwd-nft (10.200.2.11) | 80/tcp |" in md
    html = (rdir / "report.html").read_text()
    assert html.count('class="cell') == len(EXPECTED)
    assert "17 flows checked: 5 ok, 12 failed, 11 not as expected" in diagnosed["stdout"]


def test_explain_only_gives_the_same_report_from_the_saved_evidence(lab, diagnosed, tmp_path):
    evidence = diagnosed["dir"] / "evidence.json"
    assert oct(evidence.stat().st_mode & 0o777) == "0o600"
    saved = json.loads(evidence.read_text())
    assert saved["schema"] == "netdiag.reachability/evidence/1" and len(saved["flows"]) == len(EXPECTED)
    proc = lab.playbook("netdiag.reachability.explain",
                        extra_vars={"reachability_evidence_files": [str(evidence)], "reachability_report_dir": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    recap = proc.stdout.split("PLAY RECAP")[1]
    assert [line.split()[0] for line in recap.splitlines() if " ok=" in line] == ["localhost"], "explain contacted a host"
    assert json.loads((tmp_path / "report.json").read_text()) == diagnosed["report"]
    assert "17 flows checked: 5 ok, 12 failed, 11 not as expected" in proc.stdout


def test_explain_only_names_a_missing_or_bad_evidence_file(lab, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for files, needle in (([str(tmp_path / "nothing.json")], "nothing.json not found"),
                          ([str(bad)], "bad.json is not JSON")):
        proc = lab.playbook("netdiag.reachability.explain", extra_vars={"reachability_evidence_files": files,
                                                                        "reachability_report_dir": str(tmp_path)})
        assert proc.returncode != 0 and needle in proc.stdout, proc.stdout[-2000:]
    assert not (tmp_path / "report.json").exists()


def test_diagnose_changes_nothing_on_any_host(lab, diagnosed):
    assert _state_hashes(lab) == diagnosed["before"]
    assert "changed=0" in diagnosed["stdout"].split("PLAY RECAP")[1].split("localhost")[0]


def test_audit_fails_on_exactly_the_flows_that_differ_from_expect(lab, tmp_path):
    flows = {"reachability_flows": [
        {"from": "client", "to": "healthy", "ports": ["80/tcp"]},                       # open, as expected
        {"from": "client", "to": "nft-drop", "ports": ["80/tcp"], "expect": "closed"},  # closed, as expected
        {"from": "client", "to": "healthy", "ports": ["9999/tcp"]},                      # expected open: differs
        {"from": "client", "to": "loopback", "ports": ["22/tcp"], "expect": "closed"},   # open but should be closed
    ], "reachability_report_dir": str(tmp_path)}
    proc = lab.playbook("netdiag.reachability.audit", extra_vars=flows)
    assert proc.returncode != 0
    assert "2 flow(s) differ from what was expected" in proc.stdout
    assert "10.200.2.10 9999 no_listener" in proc.stdout and "10.200.2.13 22 ok" in proc.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert sorted((f["address"], f["port"]) for f in report["flows"] if not f["matches_expect"]) == [
        ("10.200.2.10", 9999), ("10.200.2.13", 22)]


def test_check_mode_runs_the_same_diagnosis(lab, tmp_path):
    proc = lab.playbook("netdiag.reachability.diagnose", check=True,
                        extra_vars={"reachability_report_dir": str(tmp_path),
                                    "reachability_flows": [{"from": "client", "to": "fwd-nft", "ports": ["80/tcp"]}]})
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["flows"][0]["cause"] == "host_firewall"


def test_bad_flows_fail_with_a_clear_message(lab, tmp_path):
    proc = lab.playbook("netdiag.reachability.diagnose",
                        extra_vars={"reachability_report_dir": str(tmp_path),
                                    "reachability_flows": [{"from": "client", "to": "no-such-host", "ports": ["70000/tcp"]}]})
    assert proc.returncode != 0
    assert "'no-such-host' is not an inventory host or group nor an IP address" in proc.stdout
