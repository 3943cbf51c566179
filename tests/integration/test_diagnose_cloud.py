"""diagnose with a cloud layer: the seeds lab's back network stood up as a VPC subnet in a moto EC2
server on loopback (a real HTTP endpoint), the security groups in front of two lab hosts, and the
diagnose playbook run as a user runs it, with ``reachability_cloud`` given as an extra var.

ufw's interface is in a group that allows only ssh: its silent 80/tcp is blamed on that group (the
packet would meet the group before ufw), with the AWS CLI command that opens it; healthy's group
allows 80: that flow stays ok and shows the rule that let it in."""
import json

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
        groups = {}
        for name, port in (("ssh-only", 22), ("web", 80)):
            gid = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[{
                "IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.200.1.0/24"}]}])
            groups[name] = gid
        ec2.create_network_interface(SubnetId=subnet, Groups=[groups["ssh-only"]], PrivateIpAddress="10.200.2.17")
        ec2.create_network_interface(SubnetId=subnet, Groups=[groups["web"]], PrivateIpAddress="10.200.2.10")
        yield {"url": url, "groups": groups}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def diagnosed(lab, moto, tmp_path_factory):
    rdir = tmp_path_factory.mktemp("cloud-report")
    before = {h: state_hash(lab, h) for h in ("ufw", "healthy")}
    flows = [{"from": "client", "to": ["ufw", "healthy"], "ports": ["80/tcp"]}]
    cloud = {"provider": "aws", "region": REGION, "endpoint_url": moto["url"],
             "access_key": "AKIANETDIAGLABKEY", "secret_key": "netdiag-lab-secret-9f3e"}   # moto takes any keys
    proc = lab.playbook("netdiag.reachability.diagnose", extra_vars={
        "reachability_report_dir": str(rdir), "reachability_flows": flows, "reachability_cloud": cloud},
        extra_args=["-v"])
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    with open(rdir / "report.json") as fh:
        report = json.load(fh)
    return {"flows": {f["destination"]: f for f in report["flows"]}, "stdout": proc.stdout, "before": before,
            "report": report}


def test_the_security_group_that_allows_no_such_port_is_the_culprit(diagnosed, moto):
    f = diagnosed["flows"]["ufw"]
    assert f["state"] == "filtered"
    assert f["cause"] == "security_group", (f["cause"], f["culprit"])
    assert f["culprit"]["layer"] == "security_group" and moto["groups"]["ssh-only"] in f["culprit"]["text"]
    command = f["fix"]["commands"][0]["command"]
    assert command.startswith("aws ec2 authorize-security-group-ingress") and moto["groups"]["ssh-only"] in command
    assert '"FromPort":80' in command
    # the host firewall behind the group would drop it too: said, not hidden
    assert any("ufw" in c for c in f["conflicts"])


def test_a_group_that_allows_the_flow_keeps_it_ok_and_shows_the_rule(diagnosed, moto):
    f = diagnosed["flows"]["healthy"]
    assert f["cause"] == "ok"
    assert f["evidence"]["cloud"][0]["verdict"] == "accept"
    assert moto["groups"]["web"] in json.dumps(f["evidence"]["cloud"][0])


def test_credentials_are_not_printed(diagnosed):
    """Even with -v (module results and loop items are printed), no key reaches the output or the report."""
    for text in (diagnosed["stdout"], json.dumps(diagnosed["report"])):
        assert "netdiag-lab-secret-9f3e" not in text and "AKIANETDIAGLABKEY" not in text


def test_summary_counts_the_cloud_cause_and_nothing_changed(lab, diagnosed):
    assert diagnosed["report"]["summary"]["by_cause"].get("security_group") == 1
    assert "security_group" in diagnosed["stdout"]
    assert {h: state_hash(lab, h) for h in ("ufw", "healthy")} == diagnosed["before"]
