"""diagnose against the seeds lab as AWX / Automation Platform runs a job: through ansible-runner,
with a private data directory (inventory, extra vars, project), no report directory (the
controller is a throw-away container there). The summary and every flow's verdict must be in the
runner's artifacts, in the playbook_on_stats event that AWX stores as the job's artifacts."""
import glob
import json
import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FLOWS = os.path.join(ROOT, "tests", "lab", "flows", "seeds.yml")


@pytest.fixture(scope="module")
def job(lab, tmp_path_factory):
    import ansible_runner
    pdd = tmp_path_factory.mktemp("runner")
    (pdd / "inventory").mkdir()
    with open(lab.inventory) as fh:
        (pdd / "inventory" / "hosts.yml").write_text(fh.read())
    (pdd / "project").mkdir()
    with open(FLOWS) as fh:
        extravars = yaml.safe_load(fh)
    extravars["reachability_report_files"] = False
    env = {k: v for k, v in lab.env().items() if k.startswith("ANSIBLE_")}
    env["PATH"] = os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ.get("PATH", "")
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, ".collections")
    default_dir = os.path.join(ROOT, "playbooks", "reachability-report")  # the default under a collection playbook
    before = os.path.getmtime(default_dir) if os.path.exists(default_dir) else None
    run = ansible_runner.run(private_data_dir=str(pdd), playbook="netdiag.reachability.diagnose", extravars=extravars,
                             envvars=env, ident="diagnose", quiet=True, timeout=900)
    artifacts = pdd / "artifacts" / "diagnose"
    after = os.path.getmtime(default_dir) if os.path.exists(default_dir) else None
    return {"run": run, "artifacts": artifacts, "stdout": (artifacts / "stdout").read_text(), "pdd": pdd,
            "default_dir": (before, after)}


def _stats_event(artifacts):
    """The playbook_on_stats event as ansible-runner wrote it to disk (what AWX reads)."""
    found = []
    for path in glob.glob(str(artifacts / "job_events" / "*.json")):
        with open(path) as fh:
            event = json.load(fh)
        if event.get("event") == "playbook_on_stats":
            found.append(event)
    assert len(found) == 1, "playbook_on_stats events: %d" % len(found)
    return found[0]


def test_the_job_succeeds(job):
    assert (job["run"].rc, job["run"].status) == (0, "successful"), job["stdout"][-5000:]
    assert (job["artifacts"] / "rc").read_text().strip() == "0"


def test_the_summary_and_every_verdict_are_in_the_artifacts(job):
    data = _stats_event(job["artifacts"])["event_data"]["artifact_data"]
    summary = data["reachability_summary"]
    assert (summary["flows"], summary["ok"], summary["failed"], summary["mismatched"]) == (17, 5, 12, 11)
    assert summary["as_expected"] is False
    assert summary["text"][0] == "17 flows checked: 5 ok, 12 failed, 11 not as expected"
    flows = {(f["address"], f["port"]): f for f in data["reachability_flows"]}
    assert len(flows) == 17
    fw = flows[("10.200.2.11", 80)]
    assert (fw["source"], fw["destination"], fw["state"], fw["cause"]) == ("client", "fwd-nft", "filtered", "host_firewall")
    assert "filter_IN_public" in fw["culprit"]
    assert {"host": "fwd-nft", "command": "firewall-cmd --zone=public --add-port=80/tcp"} in fw["fix_commands"]
    hop = flows[("10.200.2.10", 8081)]
    assert hop["cause"] == "path_block" and "tcp dport 8081 drop" in hop["culprit"]
    assert flows[("10.200.2.10", 9999)]["matches_expect"] is True  # expected closed


def test_no_report_directory_is_written_when_reports_are_off(job):
    assert "report: " not in job["stdout"]
    before, after = job["default_dir"]
    assert before == after, "the default report directory was written"
    assert not list(job["pdd"].glob("**/report.json"))
