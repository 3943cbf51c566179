"""End to end on the seed lab: diagnose -> remediate from the report -> diagnose again.  It opens the seed
ports (the only way to test it), so it runs last and restores every host exactly, also on failure."""
import json
import os


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FLOWS = os.path.join(ROOT, "tests", "lab", "flows", "seeds.yml")
COMMENT = "netdiag.reachability open_ports"


def _diagnose(lab, rdir):
    proc = lab.playbook("netdiag.reachability.diagnose", extra_vars={"reachability_report_dir": str(rdir)},
                        extra_args=["-e", "@" + FLOWS])
    assert proc.returncode == 0, proc.stdout[-3000:]
    with open(os.path.join(str(rdir), "report.json")) as fh:
        return json.load(fh)


def test_diagnose_remediate_diagnose(lab, tmp_path, restore):
    client = lab.hosts["client"].address
    for host in ("fwd-nft", "fwd-ipt"):
        restore(host, [["firewall-cmd", "--zone=public", "--remove-port=80/tcp"],
                       ["firewall-cmd", "--permanent", "--zone=public", "--remove-port=80/tcp"]])
    restore("ufw", [["ufw", "--force", "delete", "allow", "proto", "tcp", "from", client, "to", "any", "port", "80"]])
    restore("ipt-reject", [["iptables-nft", "-t", "filter", "-D", "INPUT", "-p", "tcp", "-m", "tcp", "--dport", "80",
                            "-m", "comment", "--comment", COMMENT, "-j", "ACCEPT"]])
    restore("ipt-legacy", [["iptables-legacy", "-t", "filter", "-D", "INPUT", "-p", "tcp", "-m", "tcp", "--dport", "3306",
                            "-m", "comment", "--comment", COMMENT, "-j", "ACCEPT"]])
    restore("nft-drop", [["sh", "-c", "nft -a list chain inet filter input | sed -n 's/.*%s.*# handle \\([0-9]*\\)$/\\1/p' "
                          "| xargs -r -n1 nft delete rule inet filter input handle" % COMMENT]])
    first = _diagnose(lab, tmp_path / "before")
    blocked = {(f["address"], f["port"]) for f in first["flows"] if f["cause"] == "host_firewall"}
    assert len(blocked) == 6
    proc = lab.playbook("netdiag.reachability.remediate", extra_vars={
        "open_ports_from_report": str(tmp_path / "before" / "report.json"), "open_ports_allow_raw_rules": True})
    (tmp_path / "remediate.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert "manual_actions" in proc.stdout and "loopback_only" in proc.stdout and "routers are changed by hand" in proc.stdout
    second = _diagnose(lab, tmp_path / "after")
    after = {(f["address"], f["port"]): f["cause"] for f in second["flows"]}
    assert all(after[key] == "ok" for key in blocked), after
    rest = {(f["address"], f["port"]): f["cause"] for f in first["flows"] if f["cause"] not in ("ok", "host_firewall")}
    assert {k: after[k] for k in rest} == rest
