"""Scene recognition across homes: leave-one-home-out and learning curves over every real home available.
Prints one JSON document (and writes it with --out).

    python bench/recognition_homes.py ../shared/data [--out bench/results/recognition-homes.json]

Every figure comes from ``qilu-hub model eval --cv …`` (``hub/cli/model.py``, ``hub/recognition/evaluation.py``),
called in-process: this script only chooses the homes and the runs.  Homes: van Kasteren A, B, C, ARAS A
(resident 1), Ordóñez A and B, each read with its mapping file in bench/datasets/ on the shared scene set
(sleeping, cooking, bathing, away, idle, and relaxing/eating where a home labels them; a home's other scenes
count as idle).  UCAmI and CASAS ADL-normal are readable (mapping files there too) but left out: scripted
sessions of minutes, no nights or absences, and UCAmI's sensor rooms are not verified.

Runs: (1) leave-one-home-out, ours vs the home's majority class vs the rebuilt HMM trained on the same other
homes; (2) the same with simulated days added to training; (3) per home, the days-of-labels learning curve
(1, 2, 3, 5, 7 labelled days, random draws) against leave-one-day-out on all the home's other days.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import emit  # noqa: E402
from qilu_hub.cli import main as cli  # noqa: E402
from qilu_hub.recognition.datasets import load_dataset  # noqa: E402
from qilu_hub.recognition.evaluation import Home, home_from_dataset, learning_curve_png  # noqa: E402

# name -> (folder under DATA_ROOT, mapping file, may a shipped model be trained on it (the data's terms))
HOMES: dict[str, tuple[str, str, bool]] = {
    "kasteren_a": ("kasteren", "bench/datasets/kasteren_a.yaml", True),
    "kasteren_b": ("kasteren_houseB", "bench/datasets/kasteren_b.yaml", True),
    "kasteren_c": ("kasteren_houseC", "bench/datasets/kasteren_c.yaml", True),
    "aras_a": ("aras/HouseA", "bench/datasets/aras_a.yaml", True),
    "ordonez_a": ("uci_adl_ordonez", "bench/datasets/ordonez_a.yaml", False),
    "ordonez_b": ("uci_adl_ordonez", "bench/datasets/ordonez_b.yaml", False),
}
DESIGN_DATA = {"kasteren_a"}  # the features, forest presets and class-bias targets were chosen on these days
SHIPPABLE = tuple(name for name, (_folder, _mapping, ships) in HOMES.items() if ships)  # the bundled model's homes


def load_homes(data_root: Path) -> dict[str, Home]:
    """Every home of ``HOMES``, read from ``data_root`` with its mapping file, on the shared scene set."""
    return {n: home_from_dataset(n, load_dataset(data_root / HOMES[n][0], ROOT / HOMES[n][1])) for n in HOMES}


def run_eval(argv: list[str]) -> dict[str, Any]:
    """``qilu-hub model eval ARGV --json FILE``, in this process; returns the JSON it wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli(["model", "eval", *argv, "--no-progress", "--json", str(out)])
        if code != 0:
            raise SystemExit(f"qilu-hub model eval {' '.join(argv)} failed ({code})")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path, help="folder holding the datasets (../shared/data)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--img", type=Path, default=ROOT / "docs" / "img", help="where the PNGs go")
    parser.add_argument("--homes", nargs="+", default=list(HOMES), choices=list(HOMES))
    parser.add_argument("--trees", type=int, default=None, help="trees per forest (default: the default forest)")
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--simulator-days", type=int, default=14, help="run (2): simulated days added (0: skip)")
    parser.add_argument("--no-curves", action="store_true", help="skip run (3), the learning curves")
    parser.add_argument("--repeats", type=int, default=3, help="learning curve: random draws per number of days")
    args = parser.parse_args()
    t0 = time.perf_counter()
    trees = ["--trees", str(args.trees)] if args.trees else []
    homes = [(n, str(args.data_root / HOMES[n][0]), HOMES[n][1]) for n in args.homes]
    first, rest = homes[0], homes[1:]
    loho_args = ["--cv", "leave-one-home-out", "--source", first[1], "--mapping", first[2], "--boot", str(args.boot),
                 *trees]
    for _n, data, mapping in rest:
        loho_args += ["--home", data, mapping]
    args.img.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "what": "leave-one-home-out and learning curves over real homes, figures from qilu-hub model eval --cv",
        "homes": {n: {"data": HOMES[n][0], "mapping": HOMES[n][1], "terms_allow_shipping": HOMES[n][2],
                      "shaped_the_design": n in DESIGN_DATA} for n in args.homes},
        "leave_one_home_out": run_eval([*loho_args, "--png", str(args.img / "recognition-loho-confusion.png")]),
    }
    if args.simulator_days > 0:
        result["leave_one_home_out_with_simulator"] = run_eval(
            [*loho_args, "--simulator-days", str(args.simulator_days), "--no-hmm",
             "--png", str(Path(tempfile.gettempdir()) / "qilu-loho-sim-confusion.png")])
    if not args.no_curves:
        curves = {}
        for name, data, mapping in homes:
            curves[name] = run_eval(["--cv", "days-of-labels", "--source", data, "--mapping", mapping,
                                     "--boot", str(args.boot), "--repeats", str(args.repeats), *trees,
                                     "--png", str(args.img / f"recognition-lodo-{name}.png"),
                                     "--curve-png", str(args.img / f"recognition-curve-{name}.png")])
        result["days_of_labels"] = curves
        learning_curve_png([c["days_of_labels"][0] for c in curves.values()],
                           args.img / "recognition-learning-curves.png",
                           "learning curves (dotted: all other days; dashed: 90 %)")
        result["three_days_reach_90pct"] = {
            n: next((p["share_of_reference_class"] >= 0.9 for p in c["days_of_labels"][0]["curve"] if p["days"] == 3),
                    None)
            for n, c in curves.items()
        }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
