#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: report_files
short_description: Write the diagnosis's report files and evidence on the controller, private by default
version_added: "0.1.0"
description:
  - Writes the report of netdiag.reachability.explain (or netdiag.reachability.evidence_explain) as C(report.json),
    C(report.md), C(report.html) and, when asked, C(junit.xml) into O(dir), and the evidence of
    netdiag.reachability.evidence into O(evidence_file) - on the controller, in one step (an action plugin - no module
    runs on a host, whatever host the task is for).
  - Files are written 0600 (0640 with O(group_readable)), atomically (a temporary file renamed over the old one);
    a file whose content and mode are already right is left alone, so a second run with the same report changes
    nothing. A directory that is missing is created 0700 (0750); an existing one keeps its mode.
  - What the files hold is the same as the filters netdiag.reachability.report_markdown,
    netdiag.reachability.report_html and netdiag.reachability.report_junit give.
author:
  - netdiag.reachability developers (@netdiag)
options:
  dir:
    description: The report directory.
    type: path
    required: true
  report:
    description: The report document (schema C(netdiag.reachability/report)).
    type: dict
  formats:
    description: Which report files to write.
    type: list
    elements: str
    choices: [html, json, junit, md]
    default: [json, md, html]
  evidence:
    description: An evidence bundle (netdiag.reachability.evidence) to save for an explain-only run later.
    type: dict
  evidence_file:
    description: Where the evidence goes. Default - C(evidence.json) in O(dir).
    type: path
  group_readable:
    description: Files 0640 and a created directory 0750 instead of 0600 and 0700.
    type: bool
    default: false
extends_documentation_fragment:
  - netdiag.reachability.attributes
attributes:
  action:
    support: full
    description: An action plugin; the work is done on the controller.
  check_mode:
    support: full
    description: Says what would be written and writes nothing (the reachability role runs it with C(check_mode=false),
      so a check-mode diagnosis still leaves its report).
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Runs on the controller.
seealso:
  - module: netdiag.reachability.probe
"""

EXAMPLES = r"""
- name: Write the reports and the evidence
  netdiag.reachability.report_files:
    dir: "{{ playbook_dir }}/reachability-report"
    report: "{{ reachability_report }}"
    formats: [json, md, html, junit]
    evidence: "{{ reachability_evidence_bundles[0] }}"
"""

RETURN = r"""
files:
  description: Every file written (in check mode, that would be), with its mode and whether it changed.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/srv/ci/reachability-report/report.json", "mode": "0600", "changed": true}]
directories_created:
  description: The directories that were missing and were (would be) created.
  returned: always
  type: list
  elements: str
  sample: ["/srv/ci/reachability-report"]
msg:
  description: One line saying what was written.
  returned: always
  type: str
  sample: "wrote 4 file(s) in /srv/ci/reachability-report"
"""
