#!/usr/bin/env bash
# ansible-test sanity on the collection, from a copy laid out as ansible_collections/netdiag/reachability
# (ansible-test insists on that path). Only files git knows about (tracked or not ignored) are copied.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${NETDIAG_SANITY_DIR:-/tmp/netdiag-sanity}
dest="$work/ansible_collections/netdiag/reachability"
rm -rf "$work"
mkdir -p "$dest"
cd "$here"
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
  [ -e "$f" ] || continue
  mkdir -p "$dest/$(dirname "$f")"
  cp -P "$f" "$dest/$f"
done
# ansible-test bootstraps pip in its venvs with a script it downloads from a host this machine
# cannot reach; give it an equivalent (ensurepip + PyPI) in its cache instead.
ver=$(sed -n "s/^ *pip='\([0-9.]*\)',.*/\1/p" "$here"/.venv/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -1)
mkdir -p ~/.ansible/test/cache
cp "$here/scripts/ansible_test_get_pip.py" ~/.ansible/test/cache/"get_pip_${ver//./_}.py"
cd "$dest"
git init -q . && git add -A >/dev/null 2>&1
export PATH="$here/.venv/bin:$PATH"
# --requirements installs each test's own tools (pylint, pycodestyle, ...) into the venv once.
# No file is excluded and there is no tests/sanity/ignore-*.txt: every file passes every test.
ansible-test sanity --python 3.11 --requirements --color no "$@"
