# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small data helpers shared by the filters."""

from __future__ import annotations


# Values of exactly these types (not subclasses: Ansible's tagged strings are str subclasses) are plain
# already and returned as they are; ``type(v) in _PLAIN`` is that exact-type test, one hash lookup.
_PLAIN = frozenset((str, int, float, bool, type(None)))


def plain(value):
    """Ansible's lazy/tagged containers and strings -> plain dicts, lists and scalars (so the
    library sees the same types on the controller as in a module, and JSON dumps them).

    A plain dict or list (exactly ``dict``/``list``: a report or facts already converted, the
    common case) is walked without a call per plain scalar; everything else as before."""
    kind = type(value)
    if kind is dict:
        return {str(k): v if type(v) in _PLAIN else plain(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _PLAIN else plain(v) for v in value]
    if kind in _PLAIN:
        return value
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)
