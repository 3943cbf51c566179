# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The firewall_verdict filter: evaluate packets on the saved result of firewall_info (docs in firewall_verdict.yml)."""

from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.firewall import evaluate_packets


def firewall_verdict(facts, packet):
    """One verdict for a packet dict, or a list of verdicts for a list of packets."""
    single = isinstance(packet, dict)
    try:
        verdicts = evaluate_packets(facts, [packet] if single else packet)
    except NetdiagError as exc:
        raise AnsibleFilterError("firewall_verdict: %s" % exc)
    return verdicts[0] if single else verdicts


class FilterModule(object):
    def filters(self):
        return {"firewall_verdict": firewall_verdict}
