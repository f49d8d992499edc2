"""Day review (label suggestions) on van Kasteren house A, through the hub's own review path.  Prints JSON.

    python bench/recognition_review.py ../shared/data/kasteren [--runs 3]

Measures:
  * leave-one-day-out accuracy of ``qilu_hub.recognition.review.review`` -- the function behind
    ``/api/recognition/labels/suggestions`` -- with a day-review model (look-ahead features, per-device
    block, the forest preset nested selection picks offline on every day: ``leaf20_48trees``) trained on
    the other 27 days: each test day is reviewed from its events alone, plus a day either side, exactly as
    the hub reads them from its recorder; raw (every minute, the API's default) and with 2- and 3-minute
    folding (``min_minutes``);
    the live model trained the same way without look-ahead, reviewed the same way, side by side;
  * seconds to review one day on this machine (features + model; median over the 28 days, best of --runs);
  * the review model's ONNX size;
  * why no review model is bundled: a simulator-only review model against the bundled live model on house A
    through the area/capability mapping (transfer).
Data: T.L.M. van Kasteren, A. Noulas, G. Englebienne, B. Kröse, "Accurate Activity Recognition in a Home
Setting", Ubicomp 2008.  The paper's HMM/CRF figures it is compared with: models/MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qilu_hub.recognition.datasets import Dataset, load_kasteren  # noqa: E402
from qilu_hub.recognition.features import DEFAULT_SPEC, FeatureSpec  # noqa: E402
from qilu_hub.recognition.mapping import SCENES  # noqa: E402
from qilu_hub.recognition.review import absorb_short, margin, review_windows, segments  # noqa: E402
from qilu_hub.recognition.runtime import SceneModel  # noqa: E402
from qilu_hub.recognition.simulator import SimConfig, simulate  # noqa: E402
from qilu_hub.recognition.training import FOREST_CONFIGS, TrainConfig, build_matrix, fit, metrics, to_onnx  # noqa: E402

BUNDLED = ROOT / "models" / "household_scene.onnx"
PAPER = {"HMM": (0.945, 0.794), "CRF": (0.956, 0.708)}
MEASURES = ("timeslice_accuracy", "class_accuracy")


def _load(model: Any, spec: FeatureSpec, lookahead: bool, folder: Path) -> tuple[SceneModel, int]:
    blob = to_onnx(model, spec, lookahead=lookahead)
    path = folder / ("review.onnx" if lookahead else "live.onnx")
    path.write_bytes(blob)
    return SceneModel.load(path, DEFAULT_SPEC, review=lookahead), len(blob)


def _scenes_at(found: list[Any], times: np.ndarray) -> list[str]:
    ends = np.array([s.end for s in found])
    return [found[int(np.searchsorted(ends, t, side="left"))].scene for t in times]


def lodo_review(dataset: Dataset, runs: int) -> dict[str, Any]:
    spec = DEFAULT_SPEC.with_sources(e.source for e in dataset.events)
    matrix = build_matrix(dataset, spec, lookahead=True)
    live_columns = spec.n_features
    config = FOREST_CONFIGS["leaf20_48trees"]
    truth: list[str] = []
    predicted: dict[str, list[str]] = {"review_raw": [], "review_folded_2min": [], "review_folded_3min": [],
                                       "live_raw": []}
    seconds: list[float] = []
    sizes: list[int] = []
    events = dataset.events
    stamps = np.array([e.ts for e in events])
    with tempfile.TemporaryDirectory() as tmp:
        for day in np.unique(matrix.days):
            test = matrix.days == day
            times = matrix.times[test]
            start, end = float(times[0] - spec.slice_seconds), float(times[-1])
            review_model, size = _load(fit(matrix.X[~test], matrix.y[~test], config), spec, True, Path(tmp))
            live_model, _ = _load(fit(matrix.X[~test, :live_columns], matrix.y[~test], config), spec, False, Path(tmp))
            sizes.append(size)
            pad = margin(review_model)
            # What the hub reads from its recorder for this review: a day either side.
            window = [events[i] for i in np.nonzero((stamps >= start - pad) & (stamps <= end + pad))[0]]
            best = float("inf")
            for _ in range(runs):
                t0 = time.perf_counter()
                proba = review_windows(review_model, window, times, UTC)
                best = min(best, time.perf_counter() - t0)
            seconds.append(best)
            found = segments(review_model.labels, proba, times, spec.slice_seconds)
            predicted["review_raw"] += _scenes_at(found, times)
            predicted["review_folded_2min"] += _scenes_at(absorb_short(found, 120.0), times)
            predicted["review_folded_3min"] += _scenes_at(absorb_short(found, 180.0), times)
            live = review_windows(live_model, window, times, UTC)
            predicted["live_raw"] += _scenes_at(segments(live_model.labels, live, times, spec.slice_seconds), times)
            truth += [str(v) for v in matrix.y[test]]
    labels = sorted(set(truth))
    scores = {name: {k: round(float(metrics(truth, pred, labels)[k]), 4) for k in MEASURES}
              for name, pred in predicted.items()}
    return {
        "what": "leave-one-day-out through review.review's path (features from the day's events plus a day either "
        "side, look-ahead, model); forest leaf20_48trees with the per-device block",
        "days": len(np.unique(matrix.days)),
        "slices": len(truth),
        **scores,
        "beats_both_paper_models_on_both_measures": {
            name: all(s[m] > PAPER[p][i] for p in PAPER for i, m in enumerate(MEASURES)) for name, s in scores.items()
        },
        "seconds_per_day_median": round(statistics.median(seconds), 3),
        "seconds_per_day_max": round(max(seconds), 3),
        "review_model_bytes_median": int(statistics.median(sizes)),
    }


def transfer(dataset: Dataset) -> dict[str, Any]:
    """A simulator-only review model (the bundled live model's recipe plus look-ahead) on house A."""
    sim = build_matrix(simulate(SimConfig(days=21, homes=4, seed=0)), DEFAULT_SPEC, lookahead=True)
    config = TrainConfig(max_depth=8)  # the bundled model's recipe (models/MODEL_CARD.md)
    house = dataset.to_scenes()
    target = build_matrix(house, DEFAULT_SPEC, lookahead=True)
    labels = [s for s in SCENES if s in set(target.y)]
    with tempfile.TemporaryDirectory() as tmp:
        review_model, size = _load(fit(sim.X, sim.y, config), DEFAULT_SPEC, True, Path(tmp))
        bundled = SceneModel.load(BUNDLED, DEFAULT_SPEC)
        out: dict[str, Any] = {}
        for name, model, X in (("review_simulator_only", review_model, target.X),
                               ("bundled_live", bundled, target.X[:, : DEFAULT_SPEC.n_features])):
            proba = model.decode(model.predict_proba(X), target.days)  # a live model's decoder, as the hub runs it
            pred = np.asarray(model.labels)[proba.argmax(axis=1)]
            out[name] = {k: round(float(metrics(target.y, pred, labels)[k]), 4) for k in MEASURES}
    out["review_simulator_only_bytes"] = size
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="directory with kasterenSenseData.txt and kasterenActData.txt")
    parser.add_argument("--runs", type=int, default=3, help="timing runs per day (the best is kept)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    dataset = load_kasteren(args.dataset)
    result: dict[str, Any] = {
        "dataset": "van Kasteren house A (Ubicomp 2008)",
        "feature_spec": DEFAULT_SPEC.version,
        "paper": {k: dict(zip(MEASURES, v, strict=True)) for k, v in PAPER.items()},
        "kasteren_lodo_review": lodo_review(dataset, args.runs),
        "transfer_simulator_to_kasteren": transfer(dataset),
        "python": sys.version.split()[0],
    }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
