# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The layout's rules (docs/architecture.md), read from the code's own imports.

Imports point one way: ``_common`` <- ``rules`` <- ``gather``/``cloud``/``probe``/``capture``/``fix``
<- controller code (``plugin_utils``, filters).  A reader never imports a writer (nothing but
``fix`` imports ``fix``), nothing that ships to targets imports controller code, and a module
imports only ``module_utils``.
"""

import ast
import os

import pytest

from .helpers import ROOT

PKG = "ansible_collections.netdiag.reachability.plugins."
PLUGINS = os.path.join(ROOT, "plugins")

# folder (as a dotted path under plugins/) -> the folders it may import from
MAY_IMPORT = {
    "module_utils._common": {"module_utils._common"},
    "module_utils.rules": {"module_utils._common", "module_utils.rules"},
    "module_utils.gather": {"module_utils._common", "module_utils.rules", "module_utils.gather"},
    "module_utils.cloud": {"module_utils._common", "module_utils.rules", "module_utils.cloud"},
    "module_utils.probe": {"module_utils._common", "module_utils.probe"},
    # a capture is decoded with the probe's packet codec (probe/wire.py) and nothing else of it
    "module_utils.capture": {"module_utils._common", "module_utils.capture", "module_utils.probe.wire"},
    "module_utils.fix": {"module_utils._common", "module_utils.rules", "module_utils.fix"},
    "modules": {"module_utils"},
    "plugin_utils": {"module_utils", "plugin_utils"},
    "filter": {"module_utils", "plugin_utils"},
    "action": {"module_utils", "plugin_utils"},
    "doc_fragments": set(),
}


def _layer(dotted):
    """The most specific MAY_IMPORT key that ``dotted`` (a module under plugins/) belongs to."""
    best = None
    for key in MAY_IMPORT:
        if dotted == key or dotted.startswith(key + "."):
            if best is None or len(key) > len(best):
                best = key
    return best


def _sources():
    for top, dummy, files in os.walk(PLUGINS):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(top, name)
                rel = os.path.relpath(path, PLUGINS)[:-3].replace(os.sep, ".")
                if rel.endswith(".__init__"):
                    rel = rel[:-len(".__init__")]
                yield path, rel


def _imports(path):
    with open(path) as fh:
        tree = ast.parse(fh.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PKG):
            base = node.module[len(PKG):]
            for alias in node.names:
                # ``from ...rules import model`` imports the module rules.model
                full = base + "." + alias.name
                yield node.lineno, full if os.path.exists(os.path.join(PLUGINS, *full.split(".")) + ".py") else base
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PKG):
                    yield node.lineno, alias.name[len(PKG):]


def _allowed(importer_layer, target):
    for allowed in MAY_IMPORT[importer_layer]:
        if target == allowed or target.startswith(allowed + "."):
            return True
    return False


SOURCES = sorted(_sources())


def test_every_file_has_a_layer():
    assert [rel for dummy, rel in SOURCES if _layer(rel) is None and rel not in ("module_utils",)] == []


@pytest.mark.parametrize("path,rel", SOURCES, ids=[rel for dummy, rel in SOURCES])
def test_imports_point_one_way(path, rel):
    layer = _layer(rel)
    if layer is None:
        return
    wrong = ["line %d: %s imports %s" % (line, rel, target) for line, target in _imports(path)
             if not _allowed(layer, target)]
    assert wrong == []


def test_the_rule_catches_a_wrong_direction(tmp_path):
    """The check itself: a reader importing a writer, a shipped file importing controller code."""
    bad = tmp_path / "bad.py"
    bad.write_text("from %smodule_utils.fix import raw_rule\nfrom %splugin_utils import plan\n" % (PKG, PKG))
    targets = [t for dummy, t in _imports(str(bad))]
    assert targets == ["module_utils.fix.raw_rule", "plugin_utils.plan"]
    assert not _allowed("module_utils.rules", targets[0])
    assert not _allowed("module_utils.gather", targets[1])
    assert _allowed("plugin_utils", targets[0])


def test_package_inits_are_empty():
    inits = [p for p, dummy in SOURCES if p.endswith("__init__.py")]
    assert inits and [p for p in inits if os.path.getsize(p)] == []
