"""The kernel as witness on the seeds lab: diagnose with reachability_kernel_trace lets the rule the
kernel names (nft monitor trace) decide, that rule is the evaluator's on every host the lab traces,
and the trace table is gone afterwards - after success, after a failure, after the controller was
interrupted (SIGINT) - while --check adds nothing."""
import json
import signal
import subprocess
import time

import pytest

from conftest import state_hash
from test_diagnose import EXPECTED, FLOWS

TABLE = "inet netdiag_trace"


def _leftovers(lab):
    """Hosts that still hold the trace table, and monitor processes still running (the lab's hosts
    share the root's process list)."""
    out = ["%s: table" % name for name in lab.hosts
           if lab.exec(name, "nft list table %s" % TABLE, check=False).returncode == 0]
    ps = subprocess.run(["pgrep", "-af", "nft -a monitor trace"], capture_output=True, text=True, check=False).stdout
    out += ["monitor: %s" % line for line in ps.splitlines() if line.strip()]
    return out


@pytest.fixture(scope="module")
def traced(lab, tmp_path_factory):
    before = {name: state_hash(lab, name) for name in lab.hosts}
    rdir = tmp_path_factory.mktemp("report")
    proc = lab.playbook("netdiag.reachability.diagnose", extra_vars={
        "reachability_report_dir": str(rdir), "reachability_kernel_trace": True},
        extra_args=["-e", "@" + FLOWS])
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    with open(rdir / "report.json") as fh:
        report = json.load(fh)
    return {"report": report, "stdout": proc.stdout, "before": before, "after": {n: state_hash(lab, n) for n in lab.hosts}}


def test_every_seed_scenario_keeps_its_answer_with_the_kernel_as_witness(traced):
    flows = {(f["address"], f["port"]): f for f in traced["report"]["flows"]}
    for key, (cause, culprit, _fix) in EXPECTED.items():
        f = flows[key]
        assert f["cause"] == cause, (key, f["cause"], f["culprit"], f["conflicts"])
        if culprit:
            assert culprit in json.dumps(f["culprit"]), (key, f["culprit"])


def test_the_kernel_decides_the_silent_drops_and_names_the_evaluators_rule(traced):
    flows = {(f["address"], f["port"]): f for f in traced["report"]["flows"]}
    for key, host in ((("10.200.2.18", 80), "nft-drop"), (("10.200.2.10", 8081), "router"),
                      (("10.200.2.17", 80), "ufw")):
        f = flows[key]
        assert f["decided_by"] == "kernel", (key, f["decided_by"], f["evidence"].get("kernel"))
        kernel = [k for k in f["evidence"]["kernel"] if k["host"] == host]
        assert kernel and kernel[0]["seen"] and kernel[0]["verdict"] == "drop", f["evidence"]["kernel"]
        # the kernel and the evaluator name the same rule: no conflict
        assert not [c for c in f["conflicts"] if "kernel" in c], f["conflicts"]
    # the router forwarded the packets it did not drop, and the destination saw them
    ok_path = flows[("10.200.2.10", 8081)]["evidence"]["kernel"]
    assert [k["host"] for k in ok_path][0] == "router"


def test_the_trace_table_is_gone_and_the_rules_are_as_before(lab, traced):
    assert traced["after"] == traced["before"]
    assert _leftovers(lab) == []
    # the change is reported honestly: the traced hosts report changed, the rest of the run does not
    recap = traced["stdout"].split("PLAY RECAP")[1]
    assert "nft-drop" in recap and "changed=2" in recap.split("nft-drop")[1].splitlines()[0]


def test_check_mode_adds_no_trace_table(lab, tmp_path):
    proc = lab.playbook("netdiag.reachability.diagnose", check=True, extra_vars={
        "reachability_report_dir": str(tmp_path), "reachability_kernel_trace": True, "reachability_trace": False},
        extra_args=["-e", "@" + FLOWS])
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "in check mode no host is changed, so the kernel trace does not run" in proc.stdout
    assert "Add the trace table" not in proc.stdout
    assert "changed=0" in proc.stdout.split("PLAY RECAP")[1].split("localhost")[0]


def test_the_watchdog_removes_the_table_when_nobody_comes_back(lab):
    packet = {"src": "10.200.1.10", "dst": "10.200.2.18", "protocol": "tcp", "port": 80}
    res = lab.module("nft-drop", "netdiag.reachability.kernel_trace", {"packets": [packet], "timeout": 5})
    assert res.get("changed") is True and res["table"] == TABLE, res
    assert lab.exec("nft-drop", "nft list table %s" % TABLE, check=False).returncode == 0
    time.sleep(7)
    assert lab.exec("nft-drop", "nft list table %s" % TABLE, check=False).returncode != 0
    # a stop after the window: nothing left to remove, says the window had expired
    res = lab.module("nft-drop", "netdiag.reachability.kernel_trace", {"state": "absent"})
    assert res["removed"] is True and res["window_expired"] is True and res["changed"] is False, res


def test_a_failed_start_leaves_nothing_and_a_second_run_never_disturbs_the_first(lab):
    bad = lab.module("nft-drop", "netdiag.reachability.kernel_trace",
                     {"packets": [{"src": "10.200.1.10", "dst": "10.200.2.999", "port": 80}]})
    assert bad.get("failed") and "10.200.2.999" in bad["msg"], bad
    assert lab.exec("nft-drop", "nft list table %s" % TABLE, check=False).returncode != 0
    packet = {"src": "10.200.1.10", "dst": "10.200.2.18", "protocol": "tcp", "port": 80}
    first = lab.module("nft-drop", "netdiag.reachability.kernel_trace", {"packets": [packet], "timeout": 30})
    # another run's start while the first is active is refused, and leaves the first as it was
    busy = lab.module("nft-drop", "netdiag.reachability.kernel_trace", {"packets": [packet], "timeout": 30})
    assert busy.get("failed") and "another kernel trace (run %s) is active" % first["run"] in busy["msg"], busy
    assert lab.exec("nft-drop", "nft list table %s" % TABLE, check=False).returncode == 0
    again = lab.module("nft-drop", "netdiag.reachability.kernel_trace", {"packets": [packet], "timeout": 30, "force": True})
    assert again["replaced_stale"] is True and again["run"] != first["run"]
    # the first run's stop touches nothing of the second's trace
    res = lab.module("nft-drop", "netdiag.reachability.kernel_trace", {"state": "absent", "grace": 0, "run": first["run"]})
    assert res["replaced"] is True and res["removed"] is False and res["traces"] == [], res
    assert lab.exec("nft-drop", "nft list table %s" % TABLE, check=False).returncode == 0
    res = lab.module("nft-drop", "netdiag.reachability.kernel_trace", {"state": "absent", "grace": 0, "run": again["run"]})
    assert res["removed"] is True and res["window_expired"] is False and res["replaced"] is False
    assert lab.exec("nft-drop", "nft list table %s" % TABLE, check=False).returncode != 0
    check = lab.module("nft-drop", "netdiag.reachability.kernel_trace", {"packets": [packet]}, check=True)
    assert check["changed"] is True
    assert lab.exec("nft-drop", "nft list table %s" % TABLE, check=False).returncode != 0


def test_an_interrupted_run_leaves_no_trace_table(lab, tmp_path):
    argv = [lab.ansible_bin("ansible-playbook"), "-i", lab.inventory, "netdiag.reachability.diagnose",
            "-e", json.dumps({"reachability_report_dir": str(tmp_path), "reachability_kernel_trace": True,
                              "reachability_kernel_trace_timeout": 8, "reachability_trace": False}),
            "-e", "@" + FLOWS]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=lab.env())
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "Kernel trace - probe again" in line:
                break  # the tables are in place on the traced hosts
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert any("Kernel trace - probe again" in line for line in seen), "".join(seen)[-3000:]
    assert proc.returncode != 0
    armed = [n for n in lab.hosts if lab.exec(n, "nft list table %s" % TABLE, check=False).returncode == 0]
    time.sleep(10)
    assert _leftovers(lab) == [], armed
