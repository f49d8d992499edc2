#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian/Ubuntu machine, then run the whole suite.
#   bash scripts/test.sh            # set up (idempotent) and run all tests
#   bash scripts/test.sh -k mqtt    # extra arguments go to pytest (and skip the clock check)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# Debian packages: D-Bus for the mock BlueZ, Mosquitto for MQTT, Chromium for the dashboard test,
# iproute2 for the emulated LAN, openssl for test certificates; cmake/ninja/xz and the EGL/GL headers build
# Monado (scripts/build-monado.sh), Mesa's EGL + llvmpipe run the XR bridge's OpenGL path headless.
# systemd gives systemd-analyze, which checks the service unit offline (tests/core/test_gateway_install.py).
APT_PACKAGES=(python3-venv python3-dev build-essential pkg-config dbus libdbus-1-dev libglib2.0-dev
              mosquitto chromium iproute2 openssl cmake ninja-build xz-utils
              libegl-dev libgl-dev libegl-mesa0 libgl1-mesa-dri systemd)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "qilu-hub needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2; exit 1; }
# A pinned Home Assistant Core in its own venv (.cache/ha-venv): the MQTT discovery test validates with its schemas.
# It only downloads and unpacks (no apt, nothing shared with the steps below but pip's cache), so on a fresh
# machine it runs beside them instead of adding its minute or so; its log is shown once it has finished.
ha_log=$(mktemp "${TMPDIR:-/tmp}/ha-venv.XXXXXX")
bash scripts/ha-venv.sh >"$ha_log" 2>&1 &
ha_pid=$!
trap 'kill "$ha_pid" 2>/dev/null || true' EXIT  # a set-up step failing below does not leave it running

if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
# The versions the suite is known to pass with (constraints.txt): a new release of a dependency cannot break a
# fresh clone's run; upgrades are deliberate (edit the file, run the suite).
.venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'

# Home Assistant's own JavaScript client for tests/api/test_ha_clients.py (pinned, cached in .cache/js-clients).
bash scripts/setup-js-clients.sh

# The real OpenXR runtime (Monado, simulated headset, CPU Vulkan) for the XR tests, cached in .cache/.
if [ -f scripts/build-monado.sh ]; then bash scripts/build-monado.sh; fi
# matter-server (its own venv), the matter.js appliances and the test PAA roots for the Matter tests, in .cache/.
bash scripts/setup-matter.sh
ha_rc=0
wait "$ha_pid" || ha_rc=$?
trap - EXIT
cat "$ha_log"; rm -f "$ha_log"
[ "$ha_rc" -eq 0 ] || { echo "scripts/ha-venv.sh failed (exit $ha_rc)" >&2; exit "$ha_rc"; }

.venv/bin/ruff check hub drivers xr_bridge firmware_tests scenes models bench tests fuzz scripts
# --durations: the CI log shows where the time goes (the whole run must stay within its budget)
.venv/bin/python -m pytest -q --durations=25 "$@"

# A full run also runs the clock-sensitive tests at two moments where time-of-day bugs live (just after the UTC
# midnight that starts a week, so the date and the weekday both turn over, and a daylight-saving change in
# Berlin), both in one pytest process; scripts/clock-check.sh with no arguments runs all eight.
if [ $# -eq 0 ]; then
  PYTHON=.venv/bin/python bash scripts/clock-check.sh 2026-12-07T00:05@UTC 2026-03-29T01:59@Europe/Berlin
fi
