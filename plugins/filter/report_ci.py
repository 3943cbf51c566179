# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A reachability report for CI systems and job artifacts (docs in report_junit.yml and report_stats.yml).
The code is plugin_utils/report.py."""

from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.plugin_utils import report as report_lib
from ansible_collections.netdiag.reachability.plugins.plugin_utils.data import plain


def report_junit(report, suite="netdiag.reachability"):
    try:
        return report_lib.junit_xml(plain(report), suite=plain(suite))
    except NetdiagError as exc:
        raise AnsibleFilterError("report_junit: %s" % exc)


def report_stats(report):
    try:
        return report_lib.stats(plain(report))
    except NetdiagError as exc:
        raise AnsibleFilterError("report_stats: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {
            "report_junit": report_junit,
            "report_stats": report_stats,
        }
