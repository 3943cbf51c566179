# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small data helpers shared by the filters and the planners: plain data, and the one type check of their inputs."""

from __future__ import annotations

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError


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


_TYPE_NAMES = {dict: "a dict", list: "a list", str: "a string", int: "an integer", bool: "a boolean", float: "a number",
               type(None): "null"}


def short(value):
    """``repr(value)``, cut to 60 characters (for error messages)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def need(value, types, where, optional=False, error=None):
    """``value`` (found at key path ``where``) is one of ``types`` (a bool is not an integer); returns it.
    Else ``error`` (InputError by default) naming the path, what it must be and what it is; None passes
    when ``optional``."""
    if optional and value is None:
        return value
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        raise (error or InputError)("%s must be %s, got %s %s" % (where, wanted, type(value).__name__, short(value)))
    return value
