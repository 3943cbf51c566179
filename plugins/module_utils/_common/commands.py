# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the host's own tools (nft, ip, iptables-save, ...): one place for the subprocess call."""

from __future__ import annotations

import subprocess


def run_command(argv, stdin=None, timeout=60):
    """``(rc, stdout, stderr)`` as text, or None when the program is missing."""
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return None
    return proc.returncode, proc.stdout, proc.stderr


def command_output(argv, timeout=10):
    """The stdout of a command that succeeded (undecodable bytes replaced), else None."""
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, check=False)
    except OSError:
        return None
    return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else None
