#!/usr/bin/env bash
# The library's own checks against Nest 11: a clone of the repository's committed
# state (HEAD of the working tree's repository; uncommitted changes are not in it),
# npm ci, then the @nestjs/* packages swapped for their Nest 11 majors (--no-save),
# then typecheck, build, build:fixture and a fixed jest subset: the unit tests and
# the e2e files for cluster workers (with @Cron in the primary only), many hosts on
# Redis (incl. Cluster and Sentinel) and, once committed, the app lifecycle (a
# module-owned Redis client closed by app.close()).
#
# usage: test/apps/nest11-leg.sh      env: NEST11_LEG_KEEP=1 keeps the clone
# Needs the npm registry, PostgreSQL and Redis on 127.0.0.1 (as npm test does) and
# redis-server on the PATH (the Cluster/Sentinel tests start their own).
set -euo pipefail

# Nest 11 majors of the @nestjs/* devDependencies (peers checked with
# `npm view <pkg>@<ver> peerDependencies`): event-emitter 3.x, schedule 6.x and
# terminus 11.x accept @nestjs/common/core ^10 || ^11; the library's peer ranges
# allow them (^3 || ^12, ^6 || ^12, ^11 || ^12).
nest11=(
  @nestjs/common@11 @nestjs/core@11 @nestjs/platform-express@11 @nestjs/platform-fastify@11 @nestjs/testing@11
  @nestjs/event-emitter@3 @nestjs/schedule@6 @nestjs/terminus@11
)
jest_files=(test/unit test/e2e/cluster.e2e-spec.ts test/e2e/multi-host.e2e-spec.ts)
optional_jest_files=(test/e2e/lifecycle.e2e-spec.ts)

started=$SECONDS
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pw-nest11-leg.XXXXXX")
cleanup() {
  local rc=$?
  if [[ $rc -ne 0 || ${NEST11_LEG_KEEP:-0} == 1 ]]; then echo "nest11-leg: clone kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

step() { # name command…: runs it, prints one line with the outcome and duration
  local name=$1 t=$SECONDS rc=0
  shift
  echo "---- nest11-leg: $name"
  "$@" || rc=$?
  if [[ $rc -eq 0 ]]; then
    echo "==> PASS nest11-leg $name ($((SECONDS - t))s)"
  else
    echo "==> FAIL nest11-leg $name: exit $rc ($((SECONDS - t))s)"
    exit "$rc"
  fi
}

head=$(git -C "$repo" rev-parse HEAD)
git -c advice.detachedHead=false clone --quiet "$repo" "$tmp/repo"
cd "$tmp/repo"
[[ $(git rev-parse HEAD) == "$head" ]] || { echo "==> FAIL nest11-leg: the clone is at $(git rev-parse HEAD), not $head"; exit 1; }
echo "nest11-leg: $(git log -1 --format='%h %s') (committed state of $repo)"

step "npm ci" npm ci --no-audit --no-fund --loglevel=error
step "install Nest 11" npm install --no-save --no-audit --no-fund --loglevel=error "${nest11[@]}"
# "invalid" below only means "not the ^12 range package.json asks for": expected here.
npm ls @nestjs/core @nestjs/common @nestjs/testing @nestjs/schedule @nestjs/event-emitter @nestjs/terminus @nestjs/platform-express @nestjs/platform-fastify || true
core=$(node -p "require('@nestjs/core/package.json').version")
[[ $core == 11.* ]] || { echo "==> FAIL nest11-leg: @nestjs/core is $core after the install, not 11.x"; exit 1; }
for f in "${optional_jest_files[@]}"; do [[ -f $f ]] && jest_files+=("$f"); done

step typecheck npm run typecheck
step build npm run build
step build:fixture npm run build:fixture
step "jest ${jest_files[*]}" npx jest --runInBand "${jest_files[@]}"
echo "==> PASS nest11-leg: @nestjs/core $core, all steps ($((SECONDS - started))s)"
