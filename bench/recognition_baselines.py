"""The dataset paper's HMM and CRF, rebuilt, on van Kasteren house A.  Prints one JSON document.

    python bench/recognition_baselines.py ../shared/data/kasteren [--representations changepoint+last]

Same slices, labels and leave-one-day-out folds as ``bench/recognition.py`` (60 s slices, no-activity
slices labelled "idle" and counted as a class).  For each binary representation of the 14 sensors
(raw, changepoint, last, changepoint+last; ``hub/recognition/baselines.py``) it trains, per test day,
an HMM (naive-Bayes Bernoulli emissions, counted) and a linear-chain CRF (python-crfsuite, L-BFGS) on
the other 27 days, and decodes the test day twice:

  * offline: Viterbi over the whole day, as in the paper;
  * causal: forward filtering, each slice from the slices up to it only, as a live hub must.

Accuracies are pooled over all slices (as ``bench/recognition.py`` reports ours) and also averaged per
day.  Data source: T.L.M. van Kasteren, A. Noulas, G. Englebienne, B. Kröse, "Accurate Activity
Recognition in a Home Setting", Ubicomp 2008.  Deterministic: one run gives the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qilu_hub.recognition.baselines import REPRESENTATIONS, leave_one_day_out, sensor_matrix  # noqa: E402
from qilu_hub.recognition.datasets import load_kasteren  # noqa: E402
from qilu_hub.recognition.evaluation import figures as evaluation_figures  # noqa: E402
from qilu_hub.recognition.features import DEFAULT_SPEC, day_key  # noqa: E402


def figures(y: np.ndarray, pred: np.ndarray, days: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Pooled and per-day-mean figures with bootstrap intervals over days: ``evaluation.figures``, as
    ``qilu-hub model eval`` reports them."""
    return evaluation_figures(y, pred, days, labels)


def rebuilt_paper_models(
    dataset_path: Path, representations: tuple[str, ...] = ("changepoint+last",), c2: float = 0.1
) -> dict[str, Any]:
    """``{representation: {model: {"offline": figures, "causal": figures, "seconds": s}}}``."""
    dataset = load_kasteren(dataset_path)
    times = dataset.slices(DEFAULT_SPEC)
    y = np.array(dataset.labels_at(times, DEFAULT_SPEC))
    days = np.array([day_key(float(t) - DEFAULT_SPEC.slice_seconds / 2) for t in times])
    labels = sorted(set(y.tolist()))
    out: dict[str, Any] = {}
    for rep in representations:
        X, _names = sensor_matrix(dataset.events, times, DEFAULT_SPEC.slice_seconds, rep)
        out[rep] = {}
        for model, params in (("hmm", {}), ("crf", {"c2": c2})):
            t0 = time.perf_counter()
            pred = leave_one_day_out(X, y, days, model, labels, **params)
            out[rep][model] = {k: figures(y, v, days, labels) for k, v in pred.items()}
            out[rep][model]["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="directory with kasterenSenseData.txt and kasterenActData.txt")
    parser.add_argument("--representations", nargs="+", default=list(REPRESENTATIONS), choices=REPRESENTATIONS)
    parser.add_argument("--c2", type=float, default=0.1, help="CRF L2 penalty (crfsuite's c2)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    result = {
        "dataset": "van Kasteren house A (Ubicomp 2008)",
        "protocol": "leave-one-day-out, 60 s slices, idle counted; HMM and CRF trained on the other days",
        "models": {
            "hmm": "Bernoulli naive-Bayes emissions, transitions and initial state counted, add-one smoothing",
            "crf": f"linear-chain CRF, python-crfsuite L-BFGS, c2={args.c2}, 200 iterations, bias feature",
        },
        "rebuilt": rebuilt_paper_models(args.dataset, tuple(args.representations), args.c2),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
