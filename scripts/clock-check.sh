#!/usr/bin/env bash
# Run the clock-sensitive tests (marked clock_sensitive, listed in tests/conftest.py) with the wall clock and
# time zone set to moments where time-of-day bugs live: just after UTC midnight, the small hours, noon, the
# last minute of a UTC day, and both sides of a daylight-saving change in a zone that is not UTC.
#   bash scripts/clock-check.sh                       # every clock below
#   bash scripts/clock-check.sh 2026-12-06T00:49@UTC  # only these clocks (local wall time @ IANA zone)
#   CLOCK_CHECK_PYTEST_ARGS="-x -k labels" bash scripts/clock-check.sh
# Each test starts at the clock and time flows on from there (time-machine); timers keep the real monotonic
# clock. Prints one line per clock; exits non-zero if any clock fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

CLOCKS=("$@")
if [ ${#CLOCKS[@]} -eq 0 ]; then
  CLOCKS=(
    2026-12-06T00:05@UTC            # just after midnight UTC: "yesterday" and "today" turn over
    2026-12-06T02:15@UTC
    2026-12-06T12:00@UTC
    2026-12-06T23:59@UTC            # a minute before midnight: tests that run past it
    2026-03-29T01:59@Europe/Berlin  # a minute before clocks go 02:00 -> 03:00 (spring forward)
    2026-10-25T02:30@Europe/Berlin  # the hour that happens twice (fall back), first time through
    2026-11-01T00:30@America/New_York  # evening before a fall-back night, west of UTC (05:30 UTC)
  )
fi

failed=0
for clock in "${CLOCKS[@]}"; do
  log=$(mktemp "${TMPDIR:-/tmp}/clock-check.XXXXXX")
  # shellcheck disable=SC2086  # word splitting of the extra arguments is intended
  QILU_TEST_CLOCK="$clock" "$PY" -m pytest -m clock_sensitive -q -p no:cacheprovider ${CLOCK_CHECK_PYTEST_ARGS:-} \
    > "$log" 2>&1
  rc=$?
  summary=$(tail -n 1 "$log")
  if [ $rc -eq 0 ]; then
    echo "clock $clock: ok ($summary)"
    rm -f "$log"
  else
    echo "clock $clock: FAILED ($summary); log: $log"
    grep -E '^(FAILED|ERROR) ' "$log" | sed 's/^/    /'
    failed=1
  fi
done
exit $failed
