# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way every module runs: build the AnsibleModule, call the library, turn its errors
into ``fail_json`` and its warnings into ``module.warn``, exit.

A module's ``main()`` is its argument spec and one call::

    def main():
        run_module(dict(path=dict(type="path", required=True)), _analyze)

where ``_analyze(module)`` returns the result dict (``changed`` defaults to false).

How a library error fails the task (:func:`failure`, one mapping for every module):

* :class:`MissingDependency` - ``msg`` names what is missing, the package to install and the
  target's Python (like Ansible's ``missing_required_lib``); ``package`` is the package.
* :class:`InputError` (and the ``refusals`` a module names, e.g. WouldCutManagement: refused
  before anything was read or changed) - ``msg`` only; ``changed`` is false.
* any other :class:`NetdiagError` - ``msg`` and ``error`` (the exception's class name); with
  ``done_key``, that key lists what was already done (empty when nothing was).

Whatever the library did before it failed travels on the exception as ``exc.result``, a dict
of result keys merged into ``fail_json`` (``{"changed": True, "commands": [...]}`` after a
partial change); ``changed`` is then true when it says so, or when ``done_key`` lists something.
``exc.result`` may also hold ``exception`` (a formatted traceback, e.g. of a failed import),
which ``fail_json`` shows as the traceback.

Exceptions that are not :class:`NetdiagError` are bugs: they are not caught here and surface
with their traceback.

Only :func:`run_module` needs Ansible (imported when it runs), so the rest of the library stays
importable without it.
"""

from __future__ import annotations

import platform
import sys

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import (
    InputError, MissingDependency, NetdiagError)

RESERVED_WARNINGS = "warnings"  # Ansible's own result key: passing it to exit_json is deprecated


def missing_dependency_message(exc):
    """``msg`` for a MissingDependency: what, the package to install, and on which host's Python."""
    return ("%s; on %s's Python %s. Install it on that host; if it is installed but Ansible uses another "
            "Python interpreter, see ansible_python_interpreter" % (exc, platform.node(), sys.executable))


def failure(exc, refusals=(), done_key=None):
    """The ``fail_json`` keyword arguments for the library error ``exc`` (see the module docstring)."""
    fail = {"msg": str(exc)}
    if isinstance(exc, MissingDependency):
        fail.update(msg=missing_dependency_message(exc), package=exc.package)
    elif not isinstance(exc, (InputError,) + tuple(refusals)):
        fail["error"] = type(exc).__name__
        if done_key:
            fail[done_key] = []
    fail.update(getattr(exc, "result", None) or {})
    if "changed" not in fail:
        fail["changed"] = bool(done_key and fail.get(done_key))
    return fail


def run_module(argument_spec, call, supports_check_mode=True, warn=(), refusals=(), done_key=None, **module_kwargs):
    """Run a module: ``call(module)`` returns the result dict; this never returns.

    ``warn`` names result keys whose items are also shown as Ansible warnings (the key
    ``warnings``, which Ansible reserves, is taken out of the result; other keys stay).
    ``refusals`` are NetdiagError classes failed like bad input (nothing was done).
    ``done_key`` is the result key that lists what a changer did (``commands``, ``changes``);
    a failure that is not bad input always carries it.  ``module_kwargs`` go to AnsibleModule
    (``mutually_exclusive``, ...).
    """
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=supports_check_mode, **module_kwargs)
    try:
        result = call(module)
    except NetdiagError as exc:
        module.fail_json(**failure(exc, refusals, done_key))
    for key in warn:
        for text in (result.pop(key, None) if key == RESERVED_WARNINGS else result.get(key)) or []:
            module.warn(text)
    result.setdefault("changed", False)
    module.exit_json(**result)
