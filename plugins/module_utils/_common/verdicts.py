# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verdict vocabulary (docs/verdicts.md), one constant per fact.

``STATES`` are what a probe observed, with nmap's semantics; :func:`classify` turns a reply (or
its absence) into a state and nmap's reason.  ``CAUSES`` are what the explainer concludes.
``REPORT_SCHEMA``/``REPORT_VERSION`` name the report format that diagnose writes and remediate reads.
"""

from __future__ import annotations

from ansible_collections.netdiag.reachability.plugins.module_utils._common.icmp import icmp_class

STATES = ("open", "closed", "filtered", "open|filtered", "unreachable")
CAUSES = ("ok", "no_listener", "loopback_only", "wrong_address", "host_firewall", "source_firewall",
          "path_block", "security_group", "nat", "listen_backlog_full", "host_down", "no_route", "unknown")
# the evidence hierarchy (docs/verdicts.md): strongest first; a finding's ``decided_by`` is one of these
EVIDENCE_RANKS = ("wire", "kernel", "ruleset", "config", "inference")
# what probe and trace send
PROBE_PROTOCOLS = ("tcp", "udp", "icmp")
REPORT_SCHEMA = "netdiag.reachability/report"
REPORT_VERSION = 1

# (protocol, reply kind) -> (state, reason) for replies that are not ICMP errors.
REPLY_TABLE = {
    ("tcp", "syn-ack"): ("open", "syn-ack"),
    ("tcp", "rst"): ("closed", "reset"),
    ("tcp", None): ("filtered", "no-response"),
    ("udp", "udp"): ("open", "udp-response"),
    ("udp", None): ("open|filtered", "no-response"),
    ("icmp", "echo-reply"): ("open", "echo-reply"),
    ("icmp", None): ("filtered", "no-response"),
}

# (protocol, class of ICMP error, sent by the target?) -> state; None = any sender.
# Classes: port-unreach, host-gone, prohibited (every other unreachable code),
# time-exceeded.
ICMP_TABLE = {
    ("tcp", "port-unreach", None): "filtered",
    ("tcp", "prohibited", None): "filtered",
    ("tcp", "host-gone", None): "unreachable",
    ("udp", "port-unreach", True): "closed",
    ("udp", "port-unreach", False): "filtered",
    ("udp", "prohibited", None): "filtered",
    ("udp", "host-gone", None): "unreachable",
    ("icmp", "port-unreach", None): "filtered",
    ("icmp", "prohibited", None): "filtered",
    ("icmp", "host-gone", None): "unreachable",
    ("tcp", "time-exceeded", None): "unreachable",
    ("udp", "time-exceeded", None): "unreachable",
    ("icmp", "time-exceeded", None): "unreachable",
}


def classify(protocol, reply, family=4):
    """Return ``(state, reason)`` for a probe of ``protocol`` given its ``reply`` dict
    (None when nothing came back)."""
    if reply is None:
        return REPLY_TABLE[(protocol, None)]
    if reply["kind"] != "icmp":
        return REPLY_TABLE[(protocol, reply["kind"])]
    cls, reason = icmp_class(family, reply["icmp_type"], reply["icmp_code"])
    state = ICMP_TABLE.get((protocol, cls, bool(reply.get("sender_is_target"))))
    if state is None:
        state = ICMP_TABLE[(protocol, cls, None)]
    return state, reason
