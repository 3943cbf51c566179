"""The firewalld fix goes to the zone that handles the source: on fwd-nft the client's address is bound to zone
internal, so a rule with zone_source (the client) opens the port in internal - runtime and permanent - and not in
the default zone public, and the probe from the client gets through.  fwd-nft is restored exactly."""
import difflib
import re

import pytest

from conftest import _ZONES_C14N

PORT = 9196
SPEC = "%d/tcp" % PORT


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


def _zones(lab):
    return lab.exec("fwd-nft", ["sh", "-c", _ZONES_C14N + "; ls /etc/firewalld/zones"]).stdout


@pytest.fixture(autouse=True)
def zones_unchanged(lab):
    """Say which zone file differs when the restore fixture finds fwd-nft changed (it only compares hashes)."""
    before = _zones(lab)
    yield
    after = _zones(lab)
    assert after == before, "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True)))
