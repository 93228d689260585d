#!/usr/bin/env bash
# Prints the path of a Node.js binary of the release line asked for (24, 22). The release of each
# line that the project is tested on is pinned here; the first use installs it from the npm
# registry's node-<platform>-<arch> package (a binary inside a registry package, nothing else is
# downloaded) into a cache outside the project, reused afterwards.
#   scripts/node-line.sh 24          -> /root/.cache/nestjs-failsafe-audit/node/24.22.3/.../bin/node
#   scripts/node-line.sh /usr/bin/node  (a path is printed back as it is)
set -euo pipefail

declare -A PINNED=([24]=24.22.3 [22]=22.23.5)

wanted=${1:?usage: scripts/node-line.sh <line: ${!PINNED[*]}> | <path to a node binary>}
if [[ $wanted == */* ]]; then
  [ -x "$wanted" ] || { echo "node-line: $wanted is not an executable" >&2; exit 2; }
  echo "$wanted"
  exit 0
fi
version=${PINNED[$wanted]:-}
[ -n "$version" ] || { echo "node-line: no pinned release of Node $wanted (pinned lines: ${!PINNED[*]})" >&2; exit 2; }

if [ "$(node -p 'process.versions.node' 2>/dev/null)" = "$version" ]; then
  command -v node
  exit 0
fi
package="node-$(node -p 'process.platform')-$(node -p "process.arch")"
cache=${NODE_LINES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nestjs-failsafe-audit/node}
bin="$cache/$version/node_modules/$package/bin/node"
if ! "$bin" --version >/dev/null 2>&1; then
  echo "node-line: installing Node $version ($package@$version from the npm registry) into $cache/$version" >&2
  npm install --no-save --no-package-lock --ignore-scripts --no-audit --no-fund --loglevel=error \
    --prefix "$cache/$version" "$package@$version" >&2
fi
"$bin" --version >/dev/null
echo "$bin"
