# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the diagnosis's files on the controller in one step (see plugins/modules/report_files.py)."""

import json
import os
import tempfile

from ansible.plugins.action import ActionBase

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.plugin_utils import report as report_lib
from ansible_collections.netdiag.reachability.plugins.plugin_utils.data import plain

FORMATS = {
    "json": ("report.json", lambda report: json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False) + "\n"),
    "md": ("report.md", report_lib.markdown),
    "html": ("report.html", report_lib.html_page),
    "junit": ("junit.xml", report_lib.junit_xml),
}

ARGUMENT_SPEC = {
    "dir": {"type": "path", "required": True},
    "report": {"type": "dict"},
    "formats": {"type": "list", "elements": "str", "default": ["json", "md", "html"],
                "choices": sorted(FORMATS)},
    "evidence": {"type": "dict"},
    "evidence_file": {"type": "path"},
    "group_readable": {"type": "bool", "default": False},
}


def _write(path, text, mode):
    """Write ``text`` to ``path`` atomically with ``mode``; returns whether the content or mode changed."""
    data = text.encode("utf-8")
    try:
        with open(path, "rb") as fh:
            same = fh.read() == data
        same = same and (os.stat(path).st_mode & 0o777) == mode
    except OSError:
        same = False
    if same:
        return False
    fd, tmp = tempfile.mkstemp(prefix=".netdiag-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def _directory(path, mode, check_mode):
    """Create ``path`` (and its parents) with ``mode`` when it is missing; an existing one is left as it is."""
    if os.path.isdir(path):
        return False
    if os.path.exists(path):
        raise NetdiagError("%s exists and is not a directory" % path)
    if not check_mode:
        os.makedirs(path, mode=mode)
        os.chmod(path, mode)   # not narrowed by the umask
    return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        report, evidence = plain(args["report"]), plain(args["evidence"])
        if report is None and evidence is None:
            return dict(result, failed=True, msg="nothing to write: give report, evidence or both")
        if evidence is not None and not args["evidence_file"]:
            args["evidence_file"] = os.path.join(args["dir"], "evidence.json")
        file_mode = 0o640 if args["group_readable"] else 0o600
        dir_mode = 0o750 if args["group_readable"] else 0o700
        check_mode = self._task.check_mode
        files, changed = [], False
        try:
            todo = []
            if report is not None:
                for name in args["formats"]:
                    filename, render = FORMATS[name]
                    todo.append((os.path.join(args["dir"], filename), render(report)))
            if evidence is not None:
                todo.append((args["evidence_file"], json.dumps(evidence, sort_keys=True, ensure_ascii=False) + "\n"))
            made = []
            for path in sorted({os.path.dirname(p) for p, dummy in todo}):
                if _directory(path, dir_mode, check_mode):
                    made.append(path)
            changed = bool(made)
            for path, text in todo:
                wrote = True if check_mode else _write(path, text, file_mode)
                changed = changed or wrote
                files.append({"path": path, "mode": "%04o" % file_mode, "changed": wrote})
        except (NetdiagError, OSError) as exc:
            return dict(result, failed=True, files=files, msg="could not write the reports: %s" % exc)
        result.update(changed=changed, files=files, directories_created=made,
                      msg="%s %d file(s) in %s" % ("would write" if check_mode else "wrote", len(files), args["dir"]))
        return result
