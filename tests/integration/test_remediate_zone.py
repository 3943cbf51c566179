"""The firewalld fix goes to the zone that handles the source: on fwd-nft the client's address is bound to zone
internal, so a rule with zone_source (the client) opens the port in internal - runtime and permanent - and not in
the default zone public, and the probe from the client gets through.  When the client reaches internal through an
ipset, diagnose names zone internal through the ipset and its default fix is a rich rule for the client and the port
only, which remediate puts in internal - runtime and permanent - and nowhere else.  fwd-nft is restored exactly."""
import difflib
import json
import os
import re

import pytest

from conftest import _ZONES_C14N

PORT = 9196
SPEC = "%d/tcp" % PORT
IPSET_PORT = 9197
IPSET = "ndadmins"
XML = "/etc/firewalld/zones/internal.xml"


def _put_back_internal(lab):
    """The shell command that puts /etc/firewalld/zones/internal.xml back as it is now: firewalld rewrites the file on
    every permanent change (its elements in another order), so its own bytes go back (or it is removed when the zone
    had none), and a .old backup firewalld made is removed."""
    had_old = lab.exec("fwd-nft", ["test", "-e", XML + ".old"], check=False).returncode == 0
    original = lab.exec("fwd-nft", ["sh", "-c", "test -e %s && base64 -w0 %s" % (XML, XML)], check=False)
    back = "echo %s | base64 -d > %s" % (original.stdout.strip(), XML) if original.returncode == 0 else "rm -f %s" % XML
    if not had_old:
        back += "; rm -f %s.old" % XML
    return back


def test_zone_source_changes_the_zone_the_source_is_bound_to(lab, restore):
    client = lab.hosts["client"].address
    # a permanent change makes firewalld rewrite /etc/firewalld/zones/internal.xml (its elements in another order):
    # after the undo, put the file's own bytes back (the same settings), or remove it when the zone had none
    xml = "/etc/firewalld/zones/internal.xml"
    had_old = lab.exec("fwd-nft", ["test", "-e", xml + ".old"], check=False).returncode == 0
    original = lab.exec("fwd-nft", ["sh", "-c", "test -e %s && base64 -w0 %s" % (xml, xml)], check=False)
    if original.returncode == 0:
        put_back = ["firewall-cmd", "--permanent", "--zone=internal", "--remove-port=" + SPEC]
        file_back = "echo %s | base64 -d > %s" % (original.stdout.strip(), xml)
    else:
        put_back = ["firewall-cmd", "--permanent", "--load-zone-defaults=internal"]
        file_back = "rm -f %s" % xml
    if not had_old:
        file_back += "; rm -f %s.old" % xml
    restore("fwd-nft", [["firewall-cmd", "--zone=internal", "--remove-port=" + SPEC], put_back,
                        ["firewall-cmd", "--zone=internal", "--remove-source=" + client], ["sh", "-c", file_back]])
    lab.exec("fwd-nft", ["firewall-cmd", "--zone=internal", "--add-source=" + client])
    rules = [{"host": "fwd-nft", "backend": "firewalld", "ports": [SPEC], "zone_source": client, "verify_from": "client",
              "verify_address": lab.hosts["fwd-nft"].address}]
    proc = lab.playbook("netdiag.reachability.remediate", extra_vars={"open_ports_rules": rules})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"^fwd-nft\s+: ok=\d+\s+changed=[1-9]", proc.stdout, re.M), proc.stdout[-3000:]
    for permanent in ([], ["--permanent"]):
        internal = lab.exec("fwd-nft", ["firewall-cmd"] + permanent + ["--zone=internal", "--list-ports"]).stdout.split()
        public = lab.exec("fwd-nft", ["firewall-cmd"] + permanent + ["--zone=public", "--list-ports"]).stdout.split()
        assert SPEC in internal and SPEC not in public, (permanent, internal, public)
    assert "zone internal" in proc.stdout


def test_an_ipset_bound_source_gets_a_rich_rule_in_its_zone(lab, restore, tmp_path):
    client, address = lab.hosts["client"].address, lab.hosts["fwd-nft"].address
    spec = "%d/tcp" % IPSET_PORT
    rule = 'rule family="ipv4" source address="%s" port port="%d" protocol="tcp" accept' % (client, IPSET_PORT)
    ipsets = "/etc/firewalld/ipsets"
    had_dir = lab.exec("fwd-nft", ["test", "-d", ipsets], check=False).returncode == 0
    # the ipset exists only after a reload (firewalld creates ipsets in the permanent configuration): undo the files,
    # then reload, so the runtime is the lab's permanent configuration again (the restore fixture compares the ruleset)
    files_back = "%s; rm -f %s/%s.xml %s/%s.xml.old" % (_put_back_internal(lab), ipsets, IPSET, ipsets, IPSET)
    if not had_dir:
        files_back += "; rmdir %s" % ipsets
    restore("fwd-nft", [["sh", "-c", files_back], ["firewall-cmd", "--reload"]])
    for argv in (["--permanent", "--new-ipset=" + IPSET, "--type=hash:ip"],
                 ["--permanent", "--ipset=" + IPSET, "--add-entry=" + client],
                 ["--permanent", "--zone=internal", "--add-source=ipset:" + IPSET], ["--reload"]):
        lab.exec("fwd-nft", ["firewall-cmd"] + argv)
    assert "ipset:" + IPSET in lab.exec("fwd-nft", ["firewall-cmd", "--zone=internal", "--list-sources"]).stdout
    for zone in ("internal", "public"):   # neither zone allows the port: the zone that handles the client decides
        assert spec not in lab.exec("fwd-nft", ["firewall-cmd", "--zone=" + zone, "--list-ports"]).stdout

    rdir = tmp_path / "report"
    proc = lab.playbook("netdiag.reachability.diagnose", extra_vars={
        "reachability_report_dir": str(rdir),
        "reachability_flows": [{"name": "ipset zone", "from": "client", "to": "fwd-nft", "ports": [spec]}]})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    with open(os.path.join(str(rdir), "report.json")) as fh:
        flow = next(f for f in json.load(fh)["flows"] if f["port"] == IPSET_PORT)
    culprit, fix = flow["culprit"], flow["fix"]
    assert flow["cause"] == "host_firewall", flow
    assert (culprit["layer"], culprit["zone"], culprit["zone_from"]) == ("firewalld", "internal", "ipset"), culprit
    assert culprit["zone_reason"] == "source %s is in ipset %s (entry %s), bound to zone internal" % (client, IPSET, client)
    assert culprit["chain"] == "filter_IN_internal" and flow["conflicts"] == [], flow
    assert [a["option"] for a in fix["alternatives"]] == ["rich_rule", "zone_port", "ipset_entry"]
    assert fix["alternatives"][0]["default"] is True and fix["checked"]["passes"] is True, fix
    assert fix["open_ports"]["rich_rules"] == [rule] and fix["open_ports"]["zone"] == "internal", fix
    assert "%s then falls to zone public" % client in fix["alternatives"][2]["why"]

    proc = lab.playbook("netdiag.reachability.remediate", extra_vars={"open_ports_from_report": str(rdir / "report.json")})
    (tmp_path / "remediate.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"^fwd-nft\s+: ok=\d+\s+changed=[1-9]", proc.stdout, re.M), proc.stdout[-3000:]
    for permanent in ([], ["--permanent"]):
        def listed(zone, what):
            out = lab.exec("fwd-nft", ["firewall-cmd"] + permanent + ["--zone=" + zone, what]).stdout
            return [line for line in out.splitlines() if line.strip()]
        assert listed("internal", "--list-rich-rules") == [rule], permanent
        assert spec not in " ".join(listed("internal", "--list-ports")), "the port is not opened to the whole zone"
        assert listed("public", "--list-rich-rules") == [] and spec not in " ".join(listed("public", "--list-ports"))
    # the probe from the client gets through: the host itself answers (nothing listens: a reset), no admin-prohibited
    probe = lab.module("client", "netdiag.reachability.probe", {"targets": [{"host": address, "ports": [spec]}]})
    result = probe["results"][0]
    assert result["state"] == "closed" and result["reason"] == "reset", result


def _zones(lab):
    return lab.exec("fwd-nft", ["sh", "-c", _ZONES_C14N + "; ls /etc/firewalld/zones"]).stdout


@pytest.fixture(autouse=True)
def zones_unchanged(lab):
    """Say which zone file differs when the restore fixture finds fwd-nft changed (it only compares hashes)."""
    before = _zones(lab)
    yield
    after = _zones(lab)
    assert after == before, "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True)))
