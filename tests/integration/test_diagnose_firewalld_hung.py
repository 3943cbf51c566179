"""A firewalld that owns its name on D-Bus but does not answer (stopped with SIGSTOP: stuck or busy), on a host
being diagnosed: every seed flow still gets its answer, the blocking rule on that host is still named from the
loaded ruleset, the fix says firewalld must answer first, and the run says why the runtime is not known. Before,
reading that host took a minute and failed with the raw D-Bus error."""
import json
import os
import signal
import subprocess

from conftest import state_hash
from test_diagnose import EXPECTED, FLOWS


def _firewalld_pid(lab, host):
    pids = subprocess.run(["ip", "netns", "pids", lab.hosts[host].ns], capture_output=True, text=True,
                          check=True).stdout.split()
    for pid in pids:
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if any(os.path.basename(a) == b"firewalld" for a in argv[:2]):
            return int(pid)
    raise AssertionError("no firewalld in %s" % host)


def test_a_firewalld_that_does_not_answer_still_gets_every_answer(lab, tmp_path):
    host = "fwd-nft"
    before = state_hash(lab, host)
    pid = _firewalld_pid(lab, host)
    argv = [lab.ansible_bin("ansible-playbook"), "-i", lab.inventory, "netdiag.reachability.diagnose",
            "-e", "@" + FLOWS, "-e", json.dumps({"reachability_report_dir": str(tmp_path)})]
    os.kill(pid, signal.SIGSTOP)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=lab.env(), timeout=900, check=False)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    causes = {(f["address"], f["port"]): f["cause"] for f in report["flows"]}
    assert causes == {k: v[0] for k, v in EXPECTED.items()}
    flow = next(f for f in report["flows"] if (f["address"], f["port"]) == ("10.200.2.11", 80))
    assert "filter_IN_public" in json.dumps(flow["culprit"]), flow["culprit"]
    assert flow["fix"]["manual"] and flow["fix"]["summary"].startswith("firewalld on fwd-nft did not answer (")
    assert "did not answer within 5 s" in flow["fix"]["summary"]
    assert flow["fix"]["commands"][0]["command"] == "systemctl restart firewalld"
    # the other firewalld host answered as always: its fix is the plain one
    other = next(f for f in report["flows"] if (f["address"], f["port"]) == ("10.200.2.12", 80))
    assert not other["fix"]["manual"] and "firewall-cmd --zone=public --add-port=80/tcp" in json.dumps(other["fix"])
    # resumed, the daemon answers again and nothing on the host changed
    assert "running" in lab.exec(host, ["firewall-cmd", "--state"]).stdout
    assert state_hash(lab, host) == before
