"""An execution environment for AWX / Automation Platform can be built with this collection in it:
the collection as built for Galaxy carries meta/execution-environment.yml, and ansible-builder
finds the Python and system packages the modules need through it (the way it does inside the
image build), and writes them into the build context of an EE definition that names them."""
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)

# What the code imports or runs on the host a module runs on, and on the controller.
PYTHON = {"jinja2", "boto3", "botocore", "alibabacloud_ecs20140526", "alibabacloud_tea_openapi"}
DEBIAN = {"iproute2", "nftables", "python3-nftables", "iptables", "python3-firewall", "python3-dbus", "ufw"}
RHEL = {"iproute", "nftables", "python3-nftables", "iptables-nft", "python3-firewall", "python3-dbus"}


def _tool(name):
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        pytest.fail("%s is not installed in the venv (make setup installs requirements/ecosystem.txt)" % name)
    return path


def _names(lines):
    """Package names of requirement lines ('boto3>=1.28  # from ...', 'nftables [platform:rpm]')."""
    out = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            out.add(line.split("[", 1)[0].split(">", 1)[0].split("=", 1)[0].split("<", 1)[0].strip().lower())
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The collection built as for Galaxy, installed as ansible-builder installs it in an image."""
    out = tmp_path_factory.mktemp("build")
    subprocess.run([_tool("ansible-galaxy"), "collection", "build", "--force", "--output-path", str(out), ROOT],
                   check=True, capture_output=True, text=True, timeout=120)
    tarball = next(out.glob("netdiag-reachability-*.tar.gz"))
    subprocess.run([_tool("ansible-galaxy"), "collection", "install", "--offline", "--force", "-p", str(out / "collections"),
                    str(tarball)], check=True, capture_output=True, text=True, timeout=120)
    assert (out / "collections" / "ansible_collections" / "netdiag" / "reachability" / "meta" / "execution-environment.yml").is_file()
    return out / "collections"


def test_the_built_collection_declares_its_dependencies_and_ansible_builder_finds_them(built):
    proc = subprocess.run([_tool("ansible-builder"), "introspect", str(built)],
                          check=True, capture_output=True, text=True, timeout=120)
    data = yaml.safe_load(proc.stdout)
    assert all(line.endswith("# from collection netdiag.reachability") for line in data["python"] + data["system"])
    assert PYTHON <= _names(data["python"])
    system = [line.split("#", 1)[0] for line in data["system"]]
    assert DEBIAN <= _names(line for line in system if "platform:dpkg" in line)
    assert RHEL <= _names(line for line in system if "platform:rpm" in line)


def test_ansible_builder_create_writes_a_context_that_names_the_packages(tmp_path):
    definition = {
        "version": 3,
        "images": {"base_image": {"name": "ee-minimal:latest"}},
        "dependencies": {
            "ansible_core": {"package_pip": "ansible-core>=2.16"},
            "ansible_runner": {"package_pip": "ansible-runner"},
            "galaxy": {"collections": [{"name": "netdiag.reachability"}]},
            "python": os.path.join(ROOT, "requirements.txt"),
            "system": os.path.join(ROOT, "bindep.txt"),
        },
    }
    (tmp_path / "execution-environment.yml").write_text(yaml.safe_dump(definition))
    context = tmp_path / "context"
    proc = subprocess.run([_tool("ansible-builder"), "create", "-f", "execution-environment.yml", "-c", str(context),
                           "--output-filename", "Containerfile"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    build = context / "_build"
    assert PYTHON <= _names((build / "requirements.txt").read_text().splitlines())
    assert DEBIAN | RHEL <= _names((build / "bindep.txt").read_text().splitlines())
    assert yaml.safe_load((build / "requirements.yml").read_text())["collections"] == [{"name": "netdiag.reachability"}]
    containerfile = (context / "Containerfile").read_text()
    assert "requirements.yml" in containerfile and "bindep.txt" in containerfile and "requirements.txt" in containerfile


def test_every_debian_package_of_bindep_exists_here():
    """bindep on this Debian machine (make setup installs the same packages): every name is a real
    Debian package - a misspelt one would be reported missing."""
    if not shutil.which("dpkg-query"):
        pytest.fail("not a Debian machine: dpkg-query is missing")
    proc = subprocess.run([_tool("bindep"), "-b", "-f", os.path.join(ROOT, "bindep.txt")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "", "missing: %s %s" % (proc.stdout, proc.stderr)
