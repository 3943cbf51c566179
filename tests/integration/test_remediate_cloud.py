"""diagnose -> remediate -> diagnose with a cloud layer: the seeds lab's back network as a VPC subnet in a moto EC2
server on loopback (a real HTTP endpoint), ufw's interface in a group that allows only ssh.  diagnose blames the
group for client -> ufw 80/tcp; remediate --check changes no group; remediate adds exactly the client's /32 on
80/tcp to that group (describe shows it); a second run changes nothing; the next diagnose reads the group as
allowing the flow, and the culprit moves to the next layer (ufw, which drops it too).  No lab host changes."""
import json
import re

import pytest

from conftest import moto_reset, state_hash

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def moto():
    pytest.importorskip("boto3", reason="boto3 is needed (requirements/cloud.txt)")
    server_mod = pytest.importorskip("moto.server", reason="moto[server] is needed (requirements/cloud.txt)")
    import boto3
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        url = "http://%s:%d" % server.get_host_and_port()
        # moto keeps its backends per process, not per server: start from an empty account, so
        # another test module's VPC (an interface with the same address) is not found first
        moto_reset(server.get_host_and_port())
        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=url, aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        vpc = ec2.create_vpc(CidrBlock="10.200.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.200.2.0/24")["Subnet"]["SubnetId"]
        gid = ec2.create_security_group(GroupName="ssh-only", Description="ssh-only", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.200.1.0/24"}]}])
        ec2.create_network_interface(SubnetId=subnet, Groups=[gid], PrivateIpAddress="10.200.2.17")
        yield {"url": url, "group": gid, "ec2": ec2}
    finally:
        server.stop()


def _ingress(moto):
    perms = moto["ec2"].describe_security_groups(GroupIds=[moto["group"]])["SecurityGroups"][0]["IpPermissions"]
    return sorted((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r["CidrIp"]) for p in perms for r in p.get("IpRanges") or [])


def _diagnose(lab, rdir, cloud):
    proc = lab.playbook("netdiag.reachability.diagnose", extra_vars={
        "reachability_report_dir": str(rdir), "reachability_cloud": cloud,
        "reachability_flows": [{"from": "client", "to": "ufw", "ports": ["80/tcp"]}]})
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    with open(rdir / "report.json") as fh:
        return json.load(fh)["flows"][0]


def _changed(proc, host):
    m = re.search(r"^%s\s+: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)" % re.escape(host), proc.stdout, re.M)
    assert m, proc.stdout[-3000:]
    return int(m.group(1)), int(m.group(2))


def test_diagnose_remediate_diagnose_through_the_security_group(lab, moto, tmp_path):
    cloud = {"provider": "aws", "region": REGION, "endpoint_url": moto["url"],
             "access_key": "AKIANETDIAGLABKEY", "secret_key": "netdiag-lab-secret-9f3e"}
    hosts_before = state_hash(lab, "ufw")
    first = _diagnose(lab, tmp_path / "before", cloud)
    assert first["cause"] == "security_group", first["cause"]
    report = str(tmp_path / "before" / "report.json")
    ev = {"open_ports_from_report": report, "reachability_cloud": cloud}
    group_before = _ingress(moto)

    checked = lab.playbook("netdiag.reachability.remediate", extra_vars=ev, check=True, diff=True)
    assert checked.returncode == 0, checked.stdout[-5000:]
    assert "+ingress tcp 80 from 10.200.1.10/32" in checked.stdout, checked.stdout[-5000:]   # the group's diff
    assert _ingress(moto) == group_before, "check mode changed the group"

    proc = lab.playbook("netdiag.reachability.remediate", extra_vars=ev)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert _changed(proc, "ufw")[0] >= 1
    assert _ingress(moto) == sorted(group_before + [("tcp", 80, 80, "10.200.1.10/32")]), proc.stdout[-6000:]
    assert "allowed 80/tcp from 10.200.1.10/32 in %s" % moto["group"] in proc.stdout
    for text in (proc.stdout, checked.stdout):
        assert "netdiag-lab-secret-9f3e" not in text and "AKIANETDIAGLABKEY" not in text

    again = lab.playbook("netdiag.reachability.remediate", extra_vars=ev)
    assert again.returncode == 0 and _changed(again, "ufw") == (0, 0), again.stdout[-5000:]
    assert _ingress(moto) == sorted(group_before + [("tcp", 80, 80, "10.200.1.10/32")]), proc.stdout[-6000:]

    second = _diagnose(lab, tmp_path / "after", cloud)
    assert second["evidence"]["cloud"][0]["verdict"] == "accept", second["evidence"]
    assert second["cause"] == "host_firewall" and "ufw" in json.dumps(second["culprit"]), (second["cause"], second["culprit"])
    assert state_hash(lab, "ufw") == hosts_before      # only the group changed
