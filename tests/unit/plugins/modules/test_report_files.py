"""report_files (an action plugin, on the controller) as a user runs it: the report's files with private modes, a
second run with the same report changes nothing, check mode writes nothing, a path that cannot be a directory fails
with a message naming it."""
import json
import os
import stat
import subprocess

from ..helpers import ROOT, fixture

REPORT = None


def _report():
    global REPORT  # pylint: disable=global-statement
    if REPORT is None:
        from ansible_collections.netdiag.reachability.plugins.filter.reachability import explain_facts
        seeds = json.load(open(fixture("explain", "seeds-facts.json")))
        REPORT = explain_facts(seeds["flows"], seeds["hosts"])
    return REPORT


def run(args, check=False):
    argv = [os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-m", "netdiag.reachability.report_files",
            "-a", json.dumps(args), "-o"] + (["--check"] if check else [])
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False)
    head, dummy, out = proc.stdout.partition(" => ")
    res = json.loads(out)
    res["failed"] = "FAILED" in head or bool(res.get("failed"))   # the one-line output keeps the status in front
    return res, proc


def test_writes_private_files_and_a_second_run_changes_nothing(tmp_path):
    d = tmp_path / "new" / "reports"
    res, proc = run({"dir": str(d), "report": _report(), "formats": ["json", "md", "html", "junit"],
                     "evidence": {"schema": "netdiag.reachability/evidence/1", "flows": [], "hosts": {}}})
    assert res["changed"] and not res.get("failed"), proc.stdout + proc.stderr
    assert sorted(os.listdir(d)) == ["evidence.json", "junit.xml", "report.html", "report.json", "report.md"]
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert {stat.S_IMODE(os.stat(d / n).st_mode) for n in os.listdir(d)} == {0o600}
    assert json.loads((d / "report.json").read_text()) == _report()
    assert "| client | fwd-nft (10.200.2.11) | 80/tcp |" in (d / "report.md").read_text()
    res, dummy = run({"dir": str(d), "report": _report(), "formats": ["json", "md", "html", "junit"],
                      "evidence": {"schema": "netdiag.reachability/evidence/1", "flows": [], "hosts": {}}})
    assert not res["changed"] and not any(f["changed"] for f in res["files"])


def test_group_readable_and_an_existing_directory_keeps_its_mode(tmp_path):
    os.chmod(tmp_path, 0o755)
    res, proc = run({"dir": str(tmp_path), "report": _report(), "group_readable": True})
    assert res["changed"], proc.stdout
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o755
    assert {stat.S_IMODE(os.stat(tmp_path / n).st_mode) for n in os.listdir(tmp_path)} == {0o640}


def test_check_mode_writes_nothing(tmp_path):
    res, dummy = run({"dir": str(tmp_path / "r"), "report": _report()}, check=True)
    assert res["changed"] and res["msg"].startswith("would write 3 file(s)")
    assert not (tmp_path / "r").exists()


def test_a_path_that_is_a_file_fails_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res, dummy = run({"dir": str(blocker / "sub"), "report": _report()})
    assert res.get("failed") and "could not write the reports" in res["msg"] and str(blocker) in res["msg"], res
    res, dummy = run({"dir": str(tmp_path), "formats": ["pdf"], "report": _report()})
    assert res.get("failed") and "pdf" in res["msg"], res
