# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes every module documents (after ansible.builtin.action_common_attributes).

``netdiag.reachability.attributes`` gives the descriptions; a module that changes something
adds its own ``support`` and says what check mode and diff mode do for it.  A read-only module
uses ``netdiag.reachability.attributes.info_module`` instead, which says it all.  Either way the
module gives its ``platform``'s ``platforms`` (and ``details``).  A module's own values win over
a fragment's.
"""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    # plain string literals: ansible-test's yamllint reads them from the source
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it predicts without changing the target.
  diff_mode:
    description: Returns what changed (or, in check mode, would change) when run with C(--diff).
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
"""

    INFO_MODULE = r"""
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is no diff.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
"""
