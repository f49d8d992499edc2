#!/usr/bin/env bash
# Run the clock-sensitive tests (marked clock_sensitive, listed in tests/conftest.py) with the wall clock and
# time zone set to moments where time-of-day bugs live: just after UTC midnight, the small hours, noon, the
# last minute of a UTC day, and both sides of a daylight-saving change in a zone that is not UTC.
#   bash scripts/clock-check.sh                       # every clock below
#   bash scripts/clock-check.sh 2026-12-06T00:49@UTC  # only these clocks (local wall time @ IANA zone)
#   CLOCK_CHECK_PYTEST_ARGS="-x -k labels" bash scripts/clock-check.sh
# Each test starts at the clock and time flows on from there (time-machine); timers keep the real monotonic
# clock. All clocks run in one pytest process that collects only the files holding clock-sensitive tests (each
# marked test runs once per clock, its id ending in [clock=...]): one start-up and one collection, not one per
# clock. Prints one line per clock; exits non-zero if any clock fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

CLOCKS=("$@")
if [ ${#CLOCKS[@]} -eq 0 ]; then
  CLOCKS=(
    2026-12-06T00:05@UTC            # just after midnight UTC: "yesterday" and "today" turn over
    2026-12-07T00:05@UTC            # just after a Sunday's midnight: the weekday turns over into a new week
    2026-12-06T02:15@UTC
    2026-12-06T12:00@UTC
    2026-12-06T23:59@UTC            # a minute before midnight: tests that run past it
    2026-03-29T01:59@Europe/Berlin  # a minute before clocks go 02:00 -> 03:00 (spring forward)
    2026-10-25T02:30@Europe/Berlin  # the hour that happens twice (fall back), first time through
    2026-11-01T00:30@America/New_York  # evening before a fall-back night, west of UTC (05:30 UTC)
  )
fi

# The files that hold clock-sensitive tests: those tests/conftest.py lists in CLOCK_SENSITIVE (read, not imported)
# and those that mark a test themselves.
mapfile -t FILES < <("$PY" - <<'PY'
import ast, pathlib, re
tree = ast.parse(pathlib.Path("tests/conftest.py").read_text())
listed = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
              and any(getattr(t, "id", None) == "CLOCK_SENSITIVE" for t in node.targets))
files = {entry.split("::")[0] for entry in ast.literal_eval(listed)}
files |= {str(p) for p in pathlib.Path("tests").rglob("test_*.py")
          if re.search(r"mark\.clock_sensitive\b", p.read_text(encoding="utf-8"))}
print("\n".join(sorted(files)))
PY
)
[ ${#FILES[@]} -gt 0 ] || { echo "clock-check: no clock-sensitive test files found" >&2; exit 2; }

log=$(mktemp "${TMPDIR:-/tmp}/clock-check.XXXXXX")
# shellcheck disable=SC2086  # word splitting of the extra arguments is intended
QILU_TEST_CLOCK="${CLOCKS[*]}" "$PY" -m pytest -m clock_sensitive -q -rfE -p no:cacheprovider \
  ${CLOCK_CHECK_PYTEST_ARGS:-} "${FILES[@]}" > "$log" 2>&1
rc=$?
summary=$(tail -n 1 "$log")
if [ $rc -ne 0 ] && ! grep -qE '^(FAILED|ERROR) ' "$log"; then  # no test's verdict: a usage error, a crash, nothing run
  echo "clock check: pytest exited $rc ($summary); log: $log"
  exit 1
fi
failed=0
for clock in "${CLOCKS[@]}"; do
  # a test's id names its clock: [clock=CLOCK], or [clock=CLOCK-...] with a test's own parameters
  failures=$(grep -E '^(FAILED|ERROR) ' "$log" | grep -F -e "clock=$clock]" -e "clock=$clock-" || true)
  if [ -z "$failures" ]; then
    echo "clock $clock: ok"
  else
    echo "clock $clock: FAILED ($(printf '%s\n' "$failures" | wc -l) failed); log: $log"
    printf '%s\n' "$failures" | sed 's/^/    /'
    failed=1
  fi
done
echo "clock check: ${#CLOCKS[@]} clocks, $summary"
if [ $rc -ne 0 ] && [ $failed -eq 0 ]; then  # a failure no clock's id names (a collection error)
  grep -E '^(FAILED|ERROR) ' "$log" | sed 's/^/    /'
  echo "clock check: pytest exited $rc; log: $log"
  exit 1
fi
[ $failed -eq 0 ] && rm -f "$log"
exit $failed
