# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the get-pip.py that ansible-test downloads from a host this machine
cannot reach.  Same contract as get-pip.py: bootstrap pip into the running Python and
install the requirement arguments it is given (e.g. ``pip==24.2``).  scripts/sanity.sh
places it in ansible-test's cache (~/.ansible/test/cache/get_pip_<version>.py).
"""
import ensurepip
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--upgrade", "--disable-pip-version-check"] + args)
