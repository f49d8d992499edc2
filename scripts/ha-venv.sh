#!/usr/bin/env bash
# A separate virtual environment with a pinned Home Assistant Core, for tests only: tests/mqtt/test_ha_discovery.py
# validates every MQTT discovery config the demo publishes with Home Assistant's own schemas by running
# tests/mqtt/ha_discovery_check.py with this environment's Python. Home Assistant is never a dependency of
# qilu-hub and never enters the project's .venv (its pins would fight ours).
# Idempotent: exits at once when the environment already holds the pinned versions (a stamp file says which).
# Usage: bash scripts/ha-venv.sh [DIR]   (default .cache/ha-venv; PYTHON selects the interpreter, 3.11 or 3.12)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$ROOT/.cache/ha-venv}
# 2024.3.3: the release the MQTT export was checked against (docs/mqtt.md); paho-mqtt is what its mqtt
# integration's manifest requires, and its modules import it.
PINS=(homeassistant==2024.3.3 paho-mqtt==1.6.1)
STAMP="$DIR/qilu-pins"
if [[ -x $DIR/bin/python && "$(cat "$STAMP" 2>/dev/null)" == "${PINS[*]}" ]]; then
  echo "Home Assistant test environment ready in $DIR"; exit 0
fi
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))'; then
  for candidate in python3.12 python3.11; do
    if command -v "$candidate" >/dev/null; then PYTHON=$candidate; break; fi
  done
fi
"$PYTHON" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))' || {
  echo "ha-venv: Home Assistant 2024.3 needs Python 3.11 or 3.12; set PYTHON=/path/to/python3.11" >&2; exit 2; }
rm -rf "$DIR"
"$PYTHON" -m venv "$DIR"
"$DIR/bin/python" -m pip install -q --upgrade pip
"$DIR/bin/python" -m pip install -q "${PINS[@]}"
"$DIR/bin/python" -c 'import homeassistant.components.mqtt.light'  # fails here, not in the test, if incomplete
echo "${PINS[*]}" > "$STAMP"
echo "Home Assistant test environment installed in $DIR"
