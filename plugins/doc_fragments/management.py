# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The management-connection guard option shared by the modules that change a firewall."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    DOCUMENTATION = r"""
options:
  management:
    description:
      - The management connection to protect. Defaults to the ssh connection the module runs over
        (C(SSH_CONNECTION)); when none is known the guard is skipped and RV(guard) says so.
    type: dict
    suboptions:
      source:
        description: Address the management connection comes from (the controller).
        type: str
        required: true
      address:
        description: This host's address the management connection goes to.
        type: str
      port:
        description: The ssh port.
        type: int
        default: 22
"""
