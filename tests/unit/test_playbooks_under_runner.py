"""The audit and diagnose playbooks run the way AWX runs a job (ansible-runner), on this machine
alone: localhost probes a listener the test starts on 127.0.0.1 and two ports nobody listens on.
What a CI system and an AWX user see: the exit status, junit.xml, the summary and per-flow
verdicts in the runner's artifacts (set_stats), and report files that others cannot read."""
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.slow


def _listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock


def _free_ports(n):
    socks = [socket.socket() for dummy in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _run(tmp_path, playbook, extravars):
    import ansible_runner
    pdd = tmp_path / "runner"
    (pdd / "inventory").mkdir(parents=True)
    (pdd / "inventory" / "hosts").write_text(
        "localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
           "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, ".collections"),
           "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg")}
    run = ansible_runner.run(private_data_dir=str(pdd), playbook=playbook, extravars=extravars, envvars=env,
                             quiet=True, ident="job", timeout=300)
    stats = [e for e in run.events if e.get("event") == "playbook_on_stats"]
    stdout = (pdd / "artifacts" / "job" / "stdout").read_text()
    assert stats, "no playbook_on_stats event: %s" % stdout[-3000:]
    return run, stats[0]["event_data"].get("artifact_data") or {}, stdout


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """One audit and one diagnose job, run side by side (each takes ~15 s)."""
    listener = _listener()
    open_port = listener.getsockname()[1]
    closed, closed_expected = _free_ports(2)
    flows = [{"from": "localhost", "to": "127.0.0.1", "ports": ["%d/tcp" % open_port]},
             {"from": "localhost", "to": "127.0.0.1", "ports": ["%d/tcp" % closed]},
             {"from": "localhost", "to": "127.0.0.1", "ports": ["%d/tcp" % closed_expected], "expect": "closed"}]
    base = {"reachability_flows": flows, "reachability_read_firewall": False, "reachability_trace": False,
            "reachability_probe_unreachable_wait": 0}
    audit_dir = tmp_path_factory.mktemp("audit")
    diag_dir = tmp_path_factory.mktemp("diagnose")
    existing = diag_dir / "reports"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)
    results = {}

    def job(name, tmp, playbook, extra):
        try:
            results[name] = _run(tmp, playbook, dict(base, **extra))
        except Exception as exc:  # pylint: disable=broad-except
            results[name] = exc

    threads = [threading.Thread(target=job, args=("audit", audit_dir, "netdiag.reachability.audit",
                                                  {"reachability_report_dir": str(audit_dir / "reports")})),
               threading.Thread(target=job, args=("diagnose", diag_dir, "netdiag.reachability.diagnose",
                                                  {"reachability_report_dir": str(existing),
                                                   "reachability_report_group_readable": True}))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    listener.close()
    for value in results.values():
        if isinstance(value, Exception):
            raise value
    return {"ports": (open_port, closed, closed_expected), "audit": results["audit"], "audit_dir": audit_dir / "reports",
            "diagnose": results["diagnose"], "diagnose_dir": existing}


def test_audit_fails_the_job_on_the_flow_that_is_not_as_expected(jobs):
    run, dummy, stdout = jobs["audit"]
    assert (run.rc, run.status) == (2, "failed"), stdout[-3000:]
    assert "1 flow(s) differ from what was expected: 127.0.0.1 %d no_listener" % jobs["ports"][1] in stdout


def test_audit_writes_one_junit_test_case_per_flow_with_cause_culprit_and_fix(jobs):
    open_port, closed, closed_expected = jobs["ports"]
    suite = ET.parse(str(jobs["audit_dir"] / "junit.xml")).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert sorted(cases) == sorted("localhost -> 127.0.0.1 %d/tcp" % p for p in (open_port, closed, closed_expected))
    failure = cases["localhost -> 127.0.0.1 %d/tcp" % closed].find("failure")
    assert failure.get("type") == "no_listener"
    assert failure.get("message").startswith("expected open, no_listener: nothing accepts %d/tcp on 127.0.0.1" % closed)
    assert "observed: closed (reset from 127.0.0.1)" in failure.text and "\nfix: " in failure.text
    assert cases["localhost -> 127.0.0.1 %d/tcp" % open_port].find("failure") is None
    assert cases["localhost -> 127.0.0.1 %d/tcp" % closed_expected].find("failure") is None  # closed, as expected


def test_the_summary_and_every_verdict_reach_the_runner_artifacts(jobs):
    open_port, closed, closed_expected = jobs["ports"]
    dummy, artifacts, dummy = jobs["audit"]
    summary = artifacts["reachability_summary"]
    assert (summary["flows"], summary["ok"], summary["mismatched"], summary["as_expected"]) == (3, 1, 1, False)
    by_port = {f["port"]: f for f in artifacts["reachability_flows"]}
    assert (by_port[open_port]["state"], by_port[open_port]["cause"]) == ("open", "ok")
    assert (by_port[closed]["cause"], by_port[closed]["matches_expect"]) == ("no_listener", False)
    assert by_port[closed_expected]["matches_expect"] is True
    assert "evidence" not in by_port[closed]
    # the job's artifacts are plain JSON on disk too (what AWX stores)
    dummy, artifacts2, dummy = jobs["diagnose"]
    assert artifacts2["reachability_summary"]["flows"] == 3
    json.dumps(artifacts2)


def test_report_files_are_not_readable_by_others(jobs):
    d = jobs["audit_dir"]
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    names = sorted(os.listdir(d))
    assert names == ["evidence.json", "junit.xml", "report.html", "report.json", "report.md"]
    for name in names:
        assert stat.S_IMODE(os.stat(d / name).st_mode) == 0o600, name
    if os.geteuid() == 0:  # and another user really cannot read them
        for name in ("report.json", "evidence.json"):
            proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat", str(d / name)],
                                  capture_output=True, text=True, check=False)
            assert proc.returncode != 0 and "Permission denied" in proc.stderr, name


def test_diagnose_passes_writes_no_junit_and_group_readable_files_keep_an_existing_directory(jobs):
    run, dummy, stdout = jobs["diagnose"]
    assert (run.rc, run.status) == (0, "successful"), stdout[-3000:]
    d = jobs["diagnose_dir"]
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o755  # it existed: left as it was
    assert sorted(os.listdir(d)) == ["evidence.json", "report.html", "report.json", "report.md"]
    for name in os.listdir(d):
        assert stat.S_IMODE(os.stat(d / name).st_mode) == 0o640, name
