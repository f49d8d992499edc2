#!/usr/bin/env bash
# Install the JavaScript clients the tests run with node (tests/clients/js: Home Assistant's own
# home-assistant-js-websocket, pinned with its lockfile) into .cache/js-clients. Idempotent: skipped when the
# cached node_modules were installed from the same lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."

SRC=tests/clients/js
DEST=.cache/js-clients
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
stamp=$(cat "$SRC/package.json" "$SRC/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ -f "$DEST/.installed" ] && [ "$(cat "$DEST/.installed")" = "$stamp" ] && [ -d "$DEST/node_modules" ]; then
  exit 0
fi
mkdir -p "$DEST"
cp "$SRC/package.json" "$SRC/package-lock.json" "$DEST/"
(cd "$DEST" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
echo "$stamp" > "$DEST/.installed"
