# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The firewall_verdict filter: evaluate packets on the saved result of firewall_info (docs in firewall_verdict.yml)."""

from ansible.errors import AnsibleFilterError

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.firewall import evaluate_packets


def _check(facts, packet):
    """The shapes the filter takes, checked before the library sees them (the message names the key path)."""
    if not isinstance(facts, dict):
        raise AnsibleFilterError("firewall_verdict: invalid input: the facts must be the dict firewall_info returned, "
                                 "got %s" % type(facts).__name__)
    for key, types, name in (("ruleset", dict, "a dict"), ("local_addresses", list, "a list"),
                             ("firewalld", dict, "a dict"), ("ufw", dict, "a dict"), ("layers", dict, "a dict")):
        if facts.get(key) is not None and not isinstance(facts[key], types):
            raise AnsibleFilterError("firewall_verdict: invalid input: facts.%s must be %s, got %s"
                                     % (key, name, type(facts[key]).__name__))
    for i, addr in enumerate(facts.get("local_addresses") or []):
        if not isinstance(addr, str):
            raise AnsibleFilterError("firewall_verdict: invalid input: facts.local_addresses[%d] must be an address string, "
                                     "got %s %r" % (i, type(addr).__name__, addr))
    if not isinstance(packet, (dict, list)):
        raise AnsibleFilterError("firewall_verdict: invalid input: the packet must be a dict or a list of dicts, got %s %r"
                                 % (type(packet).__name__, packet))
    for i, item in enumerate(packet if isinstance(packet, list) else []):
        if not isinstance(item, dict):
            raise AnsibleFilterError("firewall_verdict: invalid input: packets[%d] must be a dict, got %s %r"
                                     % (i, type(item).__name__, item))


def firewall_verdict(facts, packet):
    """One verdict for a packet dict, or a list of verdicts for a list of packets."""
    _check(facts, packet)
    single = isinstance(packet, dict)
    try:
        verdicts = evaluate_packets(facts, [packet] if single else packet)
    except NetdiagError as exc:
        raise AnsibleFilterError("firewall_verdict: %s" % exc)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
        # the saved firewalld/ufw facts are read deep inside; a shape the checks above do not cover
        raise AnsibleFilterError("firewall_verdict: invalid input: facts of an unexpected shape (%s: %s)"
                                 % (type(exc).__name__, exc))
    return verdicts[0] if single else verdicts


class FilterModule(object):
    def filters(self):
        return {"firewall_verdict": firewall_verdict}
