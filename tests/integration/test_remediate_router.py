"""A managed router's forward block fixed end to end: the seeds router drops client -> healthy 8081/tcp in its
forward chain; remediate (a rule for the router, forward_to healthy) inserts the minimal accept right before that
drop, guarded for the router's own ssh, and the probe from the client opens.  The router is restored exactly."""
import re

COMMENT = "netdiag.reachability open_ports"


def _probe(lab, address, port):
    script = ("import socket,sys\ns=socket.socket()\ns.settimeout(1.5)\n"
              "try:\n    s.connect((sys.argv[1], int(sys.argv[2])))\n    print('open')\n"
              "except ConnectionRefusedError:\n    print('refused')\n"
              "except OSError:\n    print('blocked')\n")
    return lab.exec("client", ["python3", "-c", script, address, str(port)]).stdout.strip()


def test_router_forward_block_fixed_with_forward_to(lab, restore):
    restore("router", [["sh", "-c", "nft -a list chain inet lab forward | sed -n 's/.*%s.*# handle \\([0-9]*\\)$/\\1/p' "
                        "| xargs -r -n1 nft delete rule inet lab forward handle" % COMMENT]])
    healthy = lab.hosts["healthy"].address
    assert _probe(lab, healthy, 8081) == "blocked"
    rules = [{"host": "router", "backend": "nftables", "ports": ["8081/tcp"], "forward_to": healthy,
              "verify_from": "client", "verify_address": healthy}]
    ev = {"open_ports_rules": rules, "open_ports_allow_raw_rules": True}
    proc = lab.playbook("netdiag.reachability.remediate", extra_vars=ev, check=True, diff=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "ip daddr %s tcp dport 8081 accept" % healthy in proc.stdout
    assert _probe(lab, healthy, 8081) == "blocked"
    proc = lab.playbook("netdiag.reachability.remediate", extra_vars=ev)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"^router\s+: ok=\d+\s+changed=[1-9]", proc.stdout, re.M), proc.stdout[-3000:]
    assert _probe(lab, healthy, 8081) == "open"
    chain = lab.exec("router", ["nft", "list", "chain", "inet", "lab", "forward"]).stdout
    lines = [line.strip() for line in chain.splitlines() if "dport 8081" in line]
    assert len(lines) == 2 and lines[0].startswith("ip daddr %s tcp dport 8081 accept" % healthy), chain
    assert COMMENT in lines[0] and " drop " in lines[1], chain
    assert _probe(lab, healthy, 8082) != "open"        # the neighbouring block is untouched
