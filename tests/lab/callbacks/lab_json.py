# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only stdout callback: prints every task result of the run as one JSON document.

Shape: {"plays": [{"play": name, "tasks": [{"task": name, "hosts": {host: result}}]}], "stats": {...}}
(the same shape as ansible.posix.json, which is not part of ansible-core).
"""
import json

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: lab_json
type: stdout
short_description: all results as one JSON document (tests only)
description: [Prints every task result of the run as one JSON document.]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "lab_json"

    def __init__(self):
        super().__init__()
        self.plays = []
        self.entries = {}   # task uuid -> its entry: under strategy free the hosts' tasks interleave

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"play": play.get_name(), "tasks": []})
        self.entries = {}

    def _entry(self, task):
        """The entry of ``task`` in the current play (made the first time the task starts)."""
        if not self.plays:
            self.plays.append({"play": "", "tasks": []})
        key = getattr(task, "_uuid", None) or id(task)
        if key not in self.entries:
            self.entries[key] = {"task": task.get_name(), "hosts": {}}
            self.plays[-1]["tasks"].append(self.entries[key])
        return self.entries[key]

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._entry(task)

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def _record(self, result, **extra):
        data = dict(self._convert(result._result))
        data.update(extra)
        self._entry(result._task)["hosts"][result._host.get_name()] = data

    @staticmethod
    def _convert(res):
        return json.loads(json.dumps(res, default=str))

    def v2_runner_on_ok(self, result, **kw):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kw):
        self._record(result, failed=True)

    def v2_runner_on_unreachable(self, result, **kw):
        self._record(result, unreachable=True)

    def v2_runner_on_skipped(self, result, **kw):
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        summary = {h: stats.summarize(h) for h in sorted(stats.processed)}
        self._display.display(json.dumps({"plays": self.plays, "stats": summary}, indent=1, default=str))
