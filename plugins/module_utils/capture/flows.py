# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Explain a packet capture (pcap or pcapng, optionally gzipped): ICMP errors matched to
the flows that caused them through the quoted header, RST answers, unanswered SYNs, and
one verdict per flow in the probe's vocabulary (``_common.verdicts.classify``: open,
closed, filtered, open|filtered, unreachable with reasons syn-ack, reset, port-unreach,
host-prohibited, admin-prohibited, no-response, ...).

A truncated or corrupt file raises :class:`~containers.TruncatedCapture` /
``ParseError`` naming the packet number and byte offset (unless ``allow_truncated``),
and the module needs nothing on the target beyond Python.

This module folds decoded packets into flows and is the entry point (:func:`analyze`);
the container readers live in ``containers`` and the packet decoding in ``decode``.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.netdiag.reachability.plugins.module_utils._common import icmp as icmp_tables
from ansible_collections.netdiag.reachability.plugins.module_utils.capture.containers import TruncatedCapture, open_capture, pcap_records, pcapng_records
from ansible_collections.netdiag.reachability.plugins.module_utils.capture.decode import LINKTYPES, decode, network_layer
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import wire
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, ParseError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import is_digits, parse_port
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import STATES, classify

DEFAULT_MAX_PACKETS = 1000000
MAX_REPLIES = 10                    # replies listed per flow (packets_in counts them all)


def _ts(value):
    return None if value is None else round(value, 6)


class _Flow(object):
    """One conversation, keyed by its initiator's 5-tuple ``(protocol, src, sport, dst, dport)``
    (ICMP echo: ``("icmp", src, id, dst, None)``)."""

    def __init__(self, key, family, index):
        self.key = key
        self.family = family
        self.index = index
        self.first_seen = None
        self.last_seen = None
        self.first_out = None
        self.packets_out = 0
        self.packets_in = 0
        self.icmp_errors = 0
        self.syns = 0
        self.replies = []
        self.answer = None       # the first reply: what the verdict rests on
        self.answer_time = None
        self.icmp = None

    def seen(self, stamp):
        if stamp is None:
            return
        if self.first_seen is None or stamp < self.first_seen:
            self.first_seen = stamp
        if self.last_seen is None or stamp > self.last_seen:
            self.last_seen = stamp

    def reply(self, entry, stamp):
        if len(self.replies) < MAX_REPLIES:
            self.replies.append(entry)
        if self.answer is None:
            self.answer = entry
            self.answer_time = stamp

    def endpoints(self):
        proto, src, sport, dst, dport = self.key
        if proto == "icmp":
            return {"protocol": proto, "src": src, "sport": None, "dst": dst, "dport": None}
        return {"protocol": proto, "src": src, "sport": sport, "dst": dst, "dport": dport}

    def result(self):
        proto = self.key[0]
        answer = None
        if self.answer is not None:
            answer = dict(self.answer)
            if answer["kind"] == "icmp":
                answer.update(icmp_type=answer["type"], icmp_code=answer["code"])
        state, reason = classify(proto, answer, self.family)
        rtt = None
        if self.answer_time is not None and self.first_out is not None and self.answer_time >= self.first_out:
            rtt = round((self.answer_time - self.first_out) * 1000.0, 3)
        out = self.endpoints()
        out.update({
            "family": "ipv%d" % self.family,
            "icmp_id": self.key[2] if proto == "icmp" else None,
            "state": state,
            "reason": reason,
            "first_seen": _ts(self.first_seen),
            "last_seen": _ts(self.last_seen),
            "rtt_ms": rtt,
            "packets": self.packets_out + self.packets_in + self.icmp_errors,
            "packets_out": self.packets_out,
            "packets_in": self.packets_in,
            "syns": self.syns if proto == "tcp" else None,
            "replies": list(self.replies),
            "icmp": self.icmp,
        })
        return out


def _icmp_entry(pkt, stamp, flow_key):
    """Describe an ICMP error: names from the shared tables, classification reason from probe."""
    family = pkt["family"]
    dst = flow_key[3]
    dummy, reason = classify(flow_key[0], {"kind": "icmp", "icmp_type": pkt["icmp_type"],
                                           "icmp_code": pkt["icmp_code"]}, family)
    return {
        "kind": "icmp",
        "time": _ts(stamp),
        "type": pkt["icmp_type"],
        "code": pkt["icmp_code"],
        "name": icmp_tables.icmp_name(family, pkt["icmp_type"], pkt["icmp_code"]),
        "reason": reason,
        "sender": pkt["src"],
        "sender_is_target": pkt["src"] == dst,
        "ttl": pkt["ttl"],
    }


def _valid_host(host):
    if host is None:
        return None
    try:
        return str(ipaddress.ip_address(str(host).strip()))
    except ValueError:
        raise InputError("invalid host %r: expected an IPv4 or IPv6 address" % (host,))


def _valid_max(value):
    if isinstance(value, bool) or (isinstance(value, str) and not is_digits(value.strip())):
        raise InputError("invalid max_packets %r: not a number" % (value,))
    try:
        num = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: infinity
        raise InputError("invalid max_packets %r: not a number" % (value,))
    if num < 1 or (isinstance(value, float) and num != value):
        raise InputError("invalid max_packets %r: must be a whole number of at least 1" % (value,))
    return num


def analyze(path, max_packets=DEFAULT_MAX_PACKETS, host=None, port=None, allow_truncated=False):
    """Read the capture at ``path`` and explain it.

    Returns ``{path, format, link_types, packets, truncated, max_packets_reached, flows,
    icmp_errors, unanswered_syns, resets, summary, notes}`` (see the module's RETURN).
    ``host``/``port`` keep only the flows (and the ICMP errors and resets about them)
    with that address or port on either side; the analysis itself always sees every
    packet.  Raises InputError for bad options or an unreadable path, ParseError for a
    file that is not a capture, TruncatedCapture for a cut-off one (unless
    ``allow_truncated``: then what was read is explained and ``truncated`` is true).
    """
    max_packets = _valid_max(max_packets)
    host = _valid_host(host)
    port = None if port is None else parse_port(port)
    stream, fmt = open_capture(path)
    notes = []
    flows = {}
    order = []
    icmp_errors = []
    resets = []
    link_types = []
    skipped = {"not_ip": 0, "other": 0}
    count = 0
    truncated = False
    reached_max = False
    try:
        records = pcapng_records(stream) if fmt.startswith("pcapng") else pcap_records(stream)
        while True:
            if count >= max_packets:
                try:
                    next(records)
                    reached_max = True
                except StopIteration:
                    pass
                except ParseError:
                    reached_max = True      # more bytes follow; they are not read, so not judged
                if reached_max:
                    notes.append("stopped after max_packets=%d packets; the rest of the capture was not read"
                                 % max_packets)
                break
            try:
                stamp, linktype, frame, dummy = next(records)
            except StopIteration:
                break
            except TruncatedCapture as exc:
                if not allow_truncated:
                    raise
                truncated = True
                notes.append("%s; explained the %d packets before it" % (exc, count))
                break
            count += 1
            name = LINKTYPES.get(linktype, "LINKTYPE_%d" % linktype)
            if name not in link_types:
                link_types.append(name)
            l3 = network_layer(linktype, frame)
            if l3 is None:
                skipped["not_ip"] += 1
                continue
            pkt = decode(*l3)
            if pkt is None:
                skipped["other"] += 1
                continue
            _account(pkt, stamp, count, flows, order, icmp_errors, resets)
    finally:
        stream.fh.close()
    unsupported = [n for n in link_types if n.startswith("LINKTYPE_")]
    if unsupported:
        notes.append("packets of link type(s) %s cannot be decoded and were skipped" % ", ".join(unsupported))
    results = [f.result() for f in order]
    results, icmp_errors, resets = _filter(results, icmp_errors, resets, host, port)
    unanswered = [dict((k, f[k]) for k in ("family", "src", "sport", "dst", "dport", "syns", "first_seen", "last_seen"))
                  for f in results if f["protocol"] == "tcp" and f["reason"] == "no-response" and f["syns"]]
    summary = dict((s, 0) for s in STATES)
    for flow in results:
        summary[flow["state"]] += 1
    summary.update(packets=count, flows=len(results), icmp_errors=len(icmp_errors), unanswered_syns=len(unanswered),
                   resets=len(resets), skipped_not_ip=skipped["not_ip"], skipped_other=skipped["other"])
    return {"path": path, "format": fmt, "link_types": link_types, "packets": count, "truncated": truncated,
            "max_packets_reached": reached_max, "flows": results, "icmp_errors": icmp_errors,
            "unanswered_syns": unanswered, "resets": resets, "summary": summary, "notes": notes}


def _flow_for(flows, order, key, family):
    flow = flows.get(key)
    if flow is None:
        flow = flows[key] = _Flow(key, family, len(order))
        order.append(flow)
    return flow


def _account(pkt, stamp, number, flows, order, icmp_errors, resets):
    """Fold one decoded packet into the flow table."""
    kind = pkt["kind"]
    if kind in ("tcp", "udp"):
        fwd = (kind, pkt["src"], pkt["sport"], pkt["dst"], pkt["dport"])
        rev = (kind, pkt["dst"], pkt["dport"], pkt["src"], pkt["sport"])
        flags = pkt.get("flags", 0)
        syn_only = kind == "tcp" and flags & wire.TCP_SYN and not flags & wire.TCP_ACK
        if fwd in flows or (rev not in flows and (kind == "udp" or syn_only)):
            flow = _flow_for(flows, order, fwd, pkt["family"])
            flow.packets_out += 1
            if flow.first_out is None:
                flow.first_out = stamp
            if syn_only:
                flow.syns += 1
            direction = "initiator"
        elif rev in flows:
            flow = flows[rev]
            flow.packets_in += 1
            direction = "responder"
            entry = {"kind": None, "time": _ts(stamp), "sender": pkt["src"], "ttl": pkt["ttl"]}
            if kind == "udp":
                entry["kind"] = "udp"
            elif flags & wire.TCP_RST:
                entry["kind"] = "rst"
            elif flags & wire.TCP_SYN and flags & wire.TCP_ACK:
                entry["kind"] = "syn-ack"
            if entry["kind"] is not None:
                flow.reply(entry, stamp)
        else:
            flow = None             # mid-stream TCP whose start is not in the capture
            direction = None
        if flow is not None:
            flow.seen(stamp)
        if kind == "tcp" and flags & wire.TCP_RST:
            resets.append({
                "packet": number, "time": _ts(stamp), "family": "ipv%d" % pkt["family"], "sender": pkt["src"],
                "src": pkt["src"], "sport": pkt["sport"], "dst": pkt["dst"], "dport": pkt["dport"], "ttl": pkt["ttl"],
                "sent_by": direction,
                "answers_syn": bool(direction == "responder" and flow.packets_in == 1 and flow.syns),
                "flow": flow.endpoints() if flow is not None else None,
            })
        return
    if kind in ("echo", "echo-reply"):
        if kind == "echo":
            flow = _flow_for(flows, order, ("icmp", pkt["src"], pkt["icmp_id"], pkt["dst"], None), pkt["family"])
            flow.packets_out += 1
            if flow.first_out is None:
                flow.first_out = stamp
        else:
            flow = flows.get(("icmp", pkt["dst"], pkt["icmp_id"], pkt["src"], None))
            if flow is None:
                return
            flow.packets_in += 1
            flow.reply({"kind": "echo-reply", "time": _ts(stamp), "sender": pkt["src"], "ttl": pkt["ttl"]}, stamp)
        flow.seen(stamp)
        return
    if kind != "icmp-error":
        return
    key = pkt["quoted"]
    rev = (key[0], key[3], key[4], key[1], key[2]) if key[0] != "icmp" else None
    quotes = "request"
    if key in flows:
        flow = flows[key]
        matched = True
    elif rev is not None and rev in flows:
        flow = flows[rev]       # the error is about one of the responder's packets
        matched = True
        quotes = "reply"
    else:
        flow = _flow_for(flows, order, key, pkt["family"])   # the flow is known only from the quote
        matched = False
    entry = _icmp_entry(pkt, stamp, flow.key if quotes == "request" else key)
    flow.icmp_errors += 1
    flow.seen(stamp)
    if quotes == "request":
        if flow.icmp is None:
            flow.icmp = dict((k, entry[k]) for k in ("type", "code", "name", "reason", "sender", "sender_is_target",
                                                     "ttl", "time"))
        flow.reply(entry, stamp)
    err = dict(entry, packet=number, family="ipv%d" % pkt["family"], to=pkt["dst"], matched=matched, quotes=quotes,
               flow=flow.endpoints())
    err.pop("kind")
    icmp_errors.append(err)


def _filter(flows, icmp_errors, resets, host, port):
    if host is None and port is None:
        return flows, icmp_errors, resets

    def keep(ends, extra=()):
        if ends is None:
            return False
        if host is not None and host not in (ends["src"], ends["dst"]) + tuple(extra):
            return False
        if port is not None and port not in (ends["sport"], ends["dport"]):
            return False
        return True

    return ([f for f in flows if keep(f)],
            [e for e in icmp_errors if keep(e["flow"], (e["sender"],))],
            [r for r in resets if keep(r["flow"] or r)])
