# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each module ships to a target: the collection's module_utils files that ansible-core's
own payload builder (``ansible.executor.module_common.recursive_finder``, the code that builds
AnsiballZ) puts beside the module, and their lines.

    scripts/payload.py [--root CHECKOUT] [--json]

``--root`` measures another checkout (e.g. a ``git worktree`` of an older commit); it must
contain ``plugins/modules``.  Run with the controller's Python (the .venv).
"""
import argparse
import datetime
import io
import json
import os
import sys
import tempfile
import zipfile

PREFIX = "ansible_collections/netdiag/reachability/plugins/module_utils/"


def measure(root):
    tmp = tempfile.mkdtemp(prefix="netdiag-payload-")
    link = os.path.join(tmp, "ansible_collections", "netdiag")
    os.makedirs(link)
    os.symlink(os.path.abspath(root), os.path.join(link, "reachability"))
    os.environ["ANSIBLE_COLLECTIONS_PATH"] = tmp
    from ansible.executor import module_common
    from ansible._internal._ansiballz import _builder
    from ansible.plugins.loader import init_plugin_loader
    init_plugin_loader([tmp])
    out = {}
    mod_dir = os.path.join(root, "plugins", "modules")
    for name in sorted(f[:-3] for f in os.listdir(mod_dir) if f.endswith(".py") and not f.startswith("_")):
        with open(os.path.join(mod_dir, name + ".py"), "rb") as fh:
            data = fh.read()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            module_common.recursive_finder(name, "ansible_collections.netdiag.reachability.plugins.modules." + name, data, zf,
                                           datetime.datetime(2020, 1, 1), _builder.ExtensionManager())
            files = {}
            for info in zf.infolist():
                if info.filename.startswith(PREFIX) and info.filename.endswith(".py"):
                    text = zf.read(info.filename).decode("utf-8")
                    files[info.filename[len(PREFIX):]] = text.count("\n")
        out[name] = {"files": len(files), "lines": sum(files.values()), "module_utils": sorted(files)}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = measure(a.root)
    if a.json:
        json.dump(res, sys.stdout, indent=1, sort_keys=True)
        print()
        return
    print("%-22s %6s %7s" % ("module", "files", "lines"))
    for name, r in res.items():
        print("%-22s %6d %7d" % (name, r["files"], r["lines"]))


if __name__ == "__main__":
    main()
