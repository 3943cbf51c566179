# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloud security groups and network ACLs, normalised into the common rule model.

- ``common``: building blocks shared by the providers (tables, chains, matches, protocols).
- ``aws``: EC2 network interfaces, security groups and network ACLs (boto3).
- ``alicloud``: Alibaba Cloud ECS instances, ENIs and security groups (official SDK).
- ``evaluate``: per packet, allowed or denied, by which rule, and the minimal fix.

See docs/rule-model.md for the model and docs/cloud.md for the cloud semantics.
"""
