# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark-only stdout callback: the lab's JSON document (tests/lab/callbacks/lab_json.py),
with each task's action, so the benchmark can tell a module that ran on a host (a round trip)
from controller-side work (set_fact, include_role, add_host, debug)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "lab", "callbacks"))
from lab_json import CallbackModule as LabJson  # noqa: E402  pylint: disable=wrong-import-position

DOCUMENTATION = """
name: bench_json
type: stdout
short_description: all results as one JSON document, with each task's action (benchmarks only)
description: [Prints every task result of the run as one JSON document.]
"""


class CallbackModule(LabJson):
    CALLBACK_NAME = "bench_json"

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._entry(task)["action"] = task.action

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start
