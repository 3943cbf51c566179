# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""security_group_info run as Ansible runs it (module file + ANSIBLE_MODULE_ARGS on stdin),
against the moto EC2 server on loopback; and its documentation as ansible-doc reads it."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from .. import helpers
from ..helpers import ROOT

SECRET = "s3cr3t-value-that-must-not-leak"


def run_module(args, check_mode=False):
    env = {"PATH": os.environ.get("PATH", ""), "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_EC2_METADATA_DISABLED": "true"}
    return helpers.run_module("security_group_info", args, check_mode, env=env, raw=True)


@pytest.mark.parametrize("check_mode", [False, True])
def test_module_verdict_in_and_out_of_check_mode(ec2, moto_url, check_mode):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.create_network_interface(SubnetId=subnet, Groups=[sg], PrivateIpAddress="10.0.1.10")
    packets = [{"proto": "tcp", "src": "203.0.113.9", "dst": "10.0.1.10", "dport": 443},
               {"proto": "tcp", "src": "203.0.113.9", "dst": "10.0.1.10", "dport": 22}]
    result, raw = run_module({"provider": "aws", "region": "eu-west-1", "endpoint_url": moto_url, "access_key": "AKIDTEST",
                              "secret_key": SECRET, "packets": packets}, check_mode=check_mode)
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is False
    assert [v["verdict"] for v in result["verdicts"]] == ["accept", "drop"]
    assert result["verdicts"][1]["fix"]["api"]["params"]["GroupId"] == sg
    assert result["interfaces"][0]["security_groups"] == [{"id": sg, "name": "web"}]
    assert SECRET not in raw


def test_module_reports_unknown_address_as_failure(ec2, moto_url):
    result, raw = run_module({"provider": "aws", "region": "eu-west-1", "endpoint_url": moto_url,
                              "access_key": "AKIDTEST", "secret_key": SECRET, "addresses": ["10.9.9.9"]})
    assert result["failed"] is True
    assert "address 10.9.9.9 belongs to no network interface" in result["msg"]


def test_module_bad_packet_names_the_value():
    result, raw = run_module({"provider": "aws", "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9",
                              "access_key": "AKIDTEST", "secret_key": SECRET,
                              "packets": [{"proto": "tcp", "src": "10.0.0.999", "dst": "10.0.1.10", "dport": 80}]})
    assert result["failed"] is True and "10.0.0.999" in result["msg"]


def test_ansible_doc_documents_every_option_and_return_key():
    ansible_doc = shutil.which("ansible-doc", path=os.path.dirname(sys.executable)) or shutil.which("ansible-doc")
    if ansible_doc is None:
        pytest.skip("ansible-doc is not installed")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"))
    proc = subprocess.run([ansible_doc, "--json", "netdiag.reachability.security_group_info"], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["netdiag.reachability.security_group_info"]
    options = doc["doc"]["options"]
    from ansible_collections.netdiag.reachability.plugins.modules import security_group_info as mod
    assert "ec2:DescribeNetworkAcls" in " ".join(doc["doc"]["description"])
    assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"
    for name in ("provider", "addresses", "instance_ids", "network_interface_ids", "packets", "ephemeral_ports",
                 "region", "profile", "access_key", "secret_key", "session_token", "endpoint_url", "retries"):
        assert options[name]["description"], name
    for key in ("provider", "region", "interfaces", "verdicts", "warnings"):
        assert doc["return"][key]["returned"] == "always"
    assert set(doc["return"]["verdicts"]["contains"]) >= {"verdict", "rule", "reason", "fix", "fixes", "steps", "layer"}
    assert mod.main


@pytest.mark.skipif(not helpers.private_namespaces_work(), reason="hiding boto3 needs a mount namespace (root)")
def test_module_without_boto3_fails_naming_the_package(tmp_path):
    boto3 = pytest.importorskip("boto3")
    fake = tmp_path / "boto3"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('No module named boto3 (hidden by the test)')\n")
    prefix = helpers.private_namespaces([(fake, os.path.dirname(boto3.__file__))])
    env = {"PATH": os.environ.get("PATH", ""), "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    result = helpers.run_module("security_group_info", {"provider": "aws", "region": "eu-west-1", "addresses": ["10.0.1.10"]},
                                env=env, prefix=prefix)
    assert result["failed"] is True and result["changed"] is False
    assert result["package"] == "boto3 and botocore (pip install boto3)"
    assert result["msg"].startswith("boto3 is required but not available (install boto3 and botocore (pip install boto3)): "
                                    "needed for provider aws; on ")
    assert sys.executable in result["msg"] and "ansible_python_interpreter" in result["msg"]
    assert "exception" not in result  # the import's traceback only when tracebacks are asked for
