# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loading the captured rule fixtures (tests/unit/fixtures/rules, see its README.md)."""
import os

from ansible_collections.netdiag.reachability.plugins.module_utils.rules import iptables
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import nftables

from ...helpers import fixture

FIXTURES = fixture("rules")


def read(*parts):
    with open(os.path.join(FIXTURES, *parts)) as fh:
        return fh.read()


def nft(name, with_text=True):
    text_path = os.path.join(FIXTURES, "nft", name + ".a.txt")
    text = read("nft", name + ".a.txt") if with_text and os.path.exists(text_path) else None
    return nftables.parse_nft_json(read("nft", name + ".json"), text=text, source=name)


def ipt(name, **kw):
    return iptables.parse_iptables_save(read("iptables", name), source=name, **kw)


def tcp(dst, dport, src="10.200.1.10", **kw):
    pkt = {"family": "ipv4", "proto": "tcp", "src": src, "dst": dst, "sport": 40000, "dport": dport,
           "iif": "eth0"}
    pkt.update(kw)
    return pkt
