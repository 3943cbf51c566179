"""Two diagnose runs at once on the same hosts (two operators, or a CI audit during an incident) do not
disturb each other: each gets every seed scenario's answer, each writes its own reports, and no host
changes."""
import json
import subprocess

import pytest

from conftest import state_hash
from test_diagnose import EXPECTED, FLOWS


@pytest.mark.parametrize("kernel", [False, True], ids=["plain", "kernel-trace"])
def test_two_diagnose_runs_at_once_each_get_every_answer(lab, tmp_path, kernel):
    """With the kernel trace, a host traced by one run refuses the other's trace (its answers then come from
    the rules), and neither run's stop touches the other's trace."""
    before = {name: state_hash(lab, name) for name in lab.hosts}
    runs = []
    for i in range(2):
        rdir = tmp_path / ("run%d" % i)
        argv = [lab.ansible_bin("ansible-playbook"), "-i", lab.inventory, "netdiag.reachability.diagnose",
                "-e", "@" + FLOWS, "-e", json.dumps({"reachability_report_dir": str(rdir), "reachability_kernel_trace": kernel})]
        runs.append((rdir, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                            env=lab.env())))
    for rdir, proc in runs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, out[-4000:] + err[-2000:]
        report = json.loads((rdir / "report.json").read_text())
        causes = {(f["address"], f["port"]): f["cause"] for f in report["flows"]}
        assert causes == {k: v[0] for k, v in EXPECTED.items()}, rdir
    assert {name: state_hash(lab, name) for name in lab.hosts} == before
    assert all(lab.exec(name, "nft list table inet netdiag_trace", check=False).returncode != 0 for name in lab.hosts)
