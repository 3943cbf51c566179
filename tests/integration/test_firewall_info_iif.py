"""firewall_info on its own: a packet without iif takes the interface from the host's routes
toward its source, so a firewalld host's `iifname "lo" accept` no longer leaves every verdict
indeterminate; on every lab host kind the verdicts are determinate and equal those with iif."""
import pytest

HOSTS = ["fwd-nft", "fwd-ipt", "ipt-reject", "ipt-legacy", "ufw", "nft-drop", "healthy"]


@pytest.mark.parametrize("host", HOSTS)
def test_packets_without_iif_get_determinate_verdicts(lab, host):
    addr = lab.hosts[host].address
    ports = [22, 80, 3306, 8000, 9999]
    packets = [{"src": src, "dst": addr, "proto": "tcp", "sport": 40000, "dport": p}
               for src in ("10.200.1.10", "10.200.2.10") for p in ports]
    without = lab.module(host, "netdiag.reachability.firewall_info", {"packets": packets, "include_rules": False})
    with_iif = lab.module(host, "netdiag.reachability.firewall_info", {
        "packets": [dict(p, iif="eth0") for p in packets], "include_rules": False})
    assert not without.get("failed"), without.get("msg")
    for a, b in zip(without["verdicts"], with_iif["verdicts"]):
        assert a["verdict"] != "indeterminate", (a["packet"], a["reason"])
        assert a["iif"]["name"] == "eth0" and a["packet"]["src"] in a["iif"]["from"]
        assert (a["verdict"], a["reason"]) == (b["verdict"], b["reason"])
        assert b["iif"] is None
