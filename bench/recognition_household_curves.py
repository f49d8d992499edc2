"""Learning curves of what a household gets: its first labelled days trained beside the other homes.

    python bench/recognition_household_curves.py ../shared/data \\
        [--out bench/results/recognition-household-curves.json]

Per home, ``qilu-hub model eval --cv days-of-labels --home …`` (in-process, ``bench/recognition_homes.run_eval``)
with the other five homes as ``--home`` and every household default of ``model train``: the ``leaf20_48trees``
forest, scenes balanced within each home, the household's days weighing one home per labelled day, and the prior
correction its labelled days choose (``--prior-correction auto``).  For 0, 1, 2, 3, 5 and 7 labelled days
(``--repeats`` random draws each) the class accuracy on the home's remaining days, against leave-one-day-out on
all its other days with the same forest; also the days alone (no other home), as ``bench/recognition_homes.py``
draws them.  Figure: ``docs/img/recognition-household-learning-curves.png``.  House A shaped the design (marked);
house C shaped the prior choice.  The other homes include Ordóñez A/B (not shippable): leave-one-home-out figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recognition_homes import DESIGN_DATA, HOMES, run_eval  # noqa: E402
from bench.report import emit, tree_name  # noqa: E402
from qilu_hub.recognition.evaluation import learning_curve_png  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path, help="folder holding the datasets (../shared/data)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--img", type=Path, default=ROOT / "docs" / "img", help="where the PNG goes")
    parser.add_argument("--homes", nargs="+", default=list(HOMES), choices=list(HOMES))
    parser.add_argument("--label-days", type=int, nargs="+", default=[1, 2, 3, 5, 7])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    rows: dict[str, Any] = {}
    curves = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.homes:
            others = [n for n in HOMES if n != name]
            argv = ["--cv", "days-of-labels", "--source", str(args.data_root / HOMES[name][0]),
                    "--mapping", HOMES[name][1], "--label-days", *map(str, args.label_days),
                    "--repeats", str(args.repeats), "--boot", str(args.boot), "--seed", str(args.seed),
                    "--png", str(Path(tmp) / "confusion.png"), "--curve-png", str(Path(tmp) / "curve.png")]
            for other in others:
                argv += ["--home", str(args.data_root / HOMES[other][0]), HOMES[other][1]]
            result = run_eval(argv)
            alone, household = result["days_of_labels"]
            curves.append(household)
            rows[name] = {
                "shaped_the_design": name in DESIGN_DATA, "forest": result["forest"],
                "reference_all_other_days": household["reference_all_other_days"],
                "household": household["curve"], "alone": alone["curve"],
                "share_at_3_days": next((p["share_of_reference_class"] for p in household["curve"] if p["days"] == 3),
                                        None),
            }
            print(name, rows[name]["share_at_3_days"], round(time.perf_counter() - t0), file=sys.stderr, flush=True)
    png = learning_curve_png(curves, args.img / "recognition-household-learning-curves.png",
                             "household days + other homes (dotted: all days; dashed: 90 %)")
    emit({"what": __doc__.split("\n")[0], "tree": tree_name(ROOT), "repeats": args.repeats, "seed": args.seed,
          "png": str(png.relative_to(ROOT)) if png.is_relative_to(ROOT) else png.name,
          "homes": rows, "seconds": round(time.perf_counter() - t0, 1)}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
