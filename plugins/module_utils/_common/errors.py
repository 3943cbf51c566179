# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exceptions raised by the netdiag.reachability library.

The library never calls ``exit_json``/``fail_json``; modules and filters map these
exceptions to Ansible's errors.  Every message names the offending value.
"""

from __future__ import annotations


class NetdiagError(Exception):
    """Base class of every error the library raises on purpose."""


class InputError(NetdiagError, ValueError):
    """A value given by the user is invalid (bad port, unknown zone, ...)."""


class ParseError(NetdiagError):
    """Data read from a host or a file could not be parsed.

    ``source`` names what was being parsed (a path, a command); ``line`` is the
    1-based line number when known.
    """

    def __init__(self, message, source=None, line=None):
        self.source = source
        self.line = line
        where = ""
        if source:
            where = " in %s" % source
            if line is not None:
                where += " line %d" % line
        super().__init__(message + where)


class MissingDependency(NetdiagError):
    """A Python library or program needed on the target is not installed.

    ``package`` names what to install for the *target's* Python.
    """

    def __init__(self, name, package=None, reason=None):
        self.name = name
        self.package = package or name
        self.reason = reason
        msg = "%s is required but not available (install %s)" % (name, self.package)
        if reason:
            msg += ": %s" % reason
        super().__init__(msg)


class BackendUnavailable(NetdiagError):
    """A daemon or service needed for a live read is not running or not reachable."""
