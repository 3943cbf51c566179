# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every unit test shares: where the checkout and the captured fixtures are, and one way
to run a module as Ansible runs it (the module file as a process, ANSIBLE_MODULE_ARGS on stdin)."""

import json
import os
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


def run_module(name, args, check_mode=False, env=None, raw=False):
    """Run ``plugins/modules/<name>.py`` with ``args`` and return its result JSON.

    ``env`` replaces the environment (PYTHONPATH is always set so the collection imports);
    ``raw=True`` returns ``(result, stdout)``.  A traceback in the output fails the test: the
    modules turn every error into ``fail_json``.
    """
    params = dict(args)
    if check_mode:
        params["_ansible_check_mode"] = True
    env = dict(os.environ if env is None else env, PYTHONPATH=os.path.join(ROOT, ".collections"))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "plugins", "modules", name + ".py")],
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": params}),
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module printed no JSON (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr))
    return (result, proc.stdout) if raw else result
