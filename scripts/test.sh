#!/usr/bin/env bash
# The whole test suite, as CI runs it (README: `make test`):
#   unit tests (no root) -> lab integration tests (root; the lab is built once and always torn down)
#   -> scenario labs (random faults with known truth; zero wrong explanations) -> yamllint -> generated docs are current -> ansible-test sanity -> ansible-lint (production profile).
# Exits non-zero on any failure; pytest's "no tests collected" (exit 5) counts as a failure.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1
export PATH="$here/.venv/bin:$PATH" ANSIBLE_CONFIG="$here/ansible.cfg"
failed=()

step() {
  local name=$1; shift
  echo "=== $name: $*"
  local t0=$SECONDS
  "$@"
  local rc=$?
  if [ $rc -eq 5 ] && [ "$1" = python ]; then
    echo "=== $name: pytest collected no tests: failing"
    rc=1
  fi
  echo "=== $name: rc=$rc ($((SECONDS - t0))s)"
  [ $rc -eq 0 ] || failed+=("$name")
}

step unit python -m pytest tests/unit -q -p no:cacheprovider
if [ "$(id -u)" = 0 ]; then
  step integration python -m pytest tests/integration -q -p no:cacheprovider
  step scenarios python -m pytest tests/scenarios -q -p no:cacheprovider -rA
else
  echo "=== integration: needs root (network namespaces); FAILING so this is not mistaken for a pass"
  failed+=(integration-not-root)
fi
step yamllint yamllint -s playbooks roles tests/lab/topologies changelogs
step docs python scripts/gendocs.py --check
if [ "${NETDIAG_SKIP_SANITY:-0}" != 1 ]; then
  step sanity bash scripts/sanity.sh
fi
# ansible-lint's production profile (.ansible-lint, .yamllint); after sanity, whose copy of the tree must not
# see the cache ansible-lint leaves in .ansible/ (a copy of the collection): removed unless it was there before.
[ -e .ansible ] && lint_cache_was_there=1 || lint_cache_was_there=0
step ansible-lint ansible-lint --profile production --nocolor
[ "$lint_cache_was_there" = 1 ] || rm -rf .ansible
tests/lab/labctl leftovers >/dev/null 2>&1 || { echo "=== lab left something behind"; tests/lab/labctl leftovers; failed+=(lab-leftovers); }

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all test steps passed"
