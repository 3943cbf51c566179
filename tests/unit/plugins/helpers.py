# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every unit test shares: where the checkout and the captured fixtures are, and one way
to run a module as Ansible runs it (the module file as a process, ANSIBLE_MODULE_ARGS on stdin)."""

import functools
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures")


def fixture(*parts):
    """The path of a captured fixture: ``fixture("pcap", "client-eth0.pcap")``."""
    return os.path.join(FIXTURES, *parts)


def load_json(*parts):
    with open(fixture(*parts)) as fh:
        return json.load(fh)


def run_module(name, args, check_mode=False, env=None, raw=False, prefix=None):
    """Run ``plugins/modules/<name>.py`` with ``args`` and return its result JSON.

    ``env`` replaces the environment (PYTHONPATH is always set so the collection imports);
    ``raw=True`` returns ``(result, stdout)``; ``prefix`` is put before the command (e.g.
    :func:`private_namespaces`).  A traceback in the output fails the test: the modules turn
    every error into ``fail_json``.
    """
    params = dict(args)
    if check_mode:
        params["_ansible_check_mode"] = True
    env = dict(os.environ if env is None else env, PYTHONPATH=os.path.join(ROOT, ".collections"))
    proc = subprocess.run(list(prefix or []) + [sys.executable, os.path.join(ROOT, "plugins", "modules", name + ".py")],
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": params}),
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module printed no JSON (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr))
    return (result, proc.stdout) if raw else result


# a module that reads or changes a firewall runs in its own network namespace (never the
# host's firewall) and mount namespace (its configuration files bind-mounted from tmp copies)
_NAMESPACE_SCRIPT = r"""
outer="$1"; shift
if [ "$(readlink /proc/self/ns/net)" = "$outer" ]; then
    echo "refusing to run: not in a private network namespace" >&2; exit 97
fi
while [ "$1" != "--" ]; do mount --bind "$1" "$2"; shift 2; done; shift
eval "$NETDIAG_TEST_SETUP"
exec "$@"
"""


@functools.lru_cache(maxsize=None)
def private_namespaces_work():
    """Whether this process may create network and mount namespaces (root, or CAP_SYS_ADMIN)."""
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "--mount", "--net", "--", "true"], capture_output=True, check=False).returncode == 0


def private_namespaces(mounts=(), setup=""):
    """A ``run_module`` prefix: run in a new network namespace (empty firewall, no interface up)
    and a new mount namespace where each ``(source, target)`` of ``mounts`` is bind-mounted
    first; ``setup`` is shell run inside before the module (e.g. ``nft -f rules``).  The
    command refuses to run when it finds itself in the caller's network namespace."""
    outer = os.readlink("/proc/self/ns/net")
    argv = ["unshare", "--mount", "--net", "--", "env", "NETDIAG_TEST_SETUP=" + setup, "sh", "-ec", _NAMESPACE_SCRIPT, "sh", outer]
    for source, target in mounts:
        argv += [str(source), str(target)]
    return argv + ["--"]
