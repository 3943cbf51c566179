# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The common firewall rule model, one parser per backend, and the packet evaluator.

- ``model``: the JSON-serialisable rule model (plain dicts) and its validation.
- ``nftables``: libnftables JSON -> model.
- ``iptables``: iptables-save / ip6tables-save text (legacy and nft variants) -> model.
- ``evaluate``: walks a packet through the model the way the kernel would.

See docs/rule-model.md.
"""
