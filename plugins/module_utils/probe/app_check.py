# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probe's application check: connect to an open TCP port and read a banner
(``banner``) or the first line of the answer to an HTTP ``HEAD`` (``http``).
"""

from __future__ import annotations

import socket
import time


def app_check(address, family, port, kind, timeout):
    """Connect and read a banner (``banner``) or send an HTTP request line (``http``)."""
    fam = socket.AF_INET if family == 4 else socket.AF_INET6
    start = time.monotonic()
    out = {"check": kind, "answered": False, "data": None, "error": None, "rtt_ms": None}
    sock = socket.socket(fam, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
        if kind == "http":
            host = address if family == 4 else "[%s]" % address
            sock.sendall(("HEAD / HTTP/1.0\r\nHost: %s\r\nUser-Agent: netdiag-probe\r\n\r\n" % host).encode("ascii"))
        data = sock.recv(512)
        if data:
            out["answered"] = True
            out["data"] = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")[:200]
        else:
            out["error"] = "connection closed without data"
    except socket.timeout:
        out["error"] = "no data within %ss" % timeout
    except OSError as exc:
        out["error"] = "%s" % (exc.strerror or exc)
    finally:
        sock.close()
    out["rtt_ms"] = round((time.monotonic() - start) * 1000.0, 3)
    return out
