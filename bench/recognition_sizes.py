"""What makes a household model big: ONNX size and tree nodes of models trained on each shippable real home,
with and without the per-device block, for both forest presets.  Prints JSON.

    python bench/recognition_sizes.py ../shared/data [--out bench/results/recognition-model-sizes.json]

Each model is trained on all of the home's labelled days, as ``qilu-hub model train --source DIR --mapping
FILE [--per-device] --forest NAME`` does (scenes as in bench/datasets/*.yaml).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recognition_homes import HOMES  # noqa: E402
from bench.report import emit  # noqa: E402
from qilu_hub.recognition.datasets import load_dataset  # noqa: E402
from qilu_hub.recognition.features import DEFAULT_SPEC  # noqa: E402
from qilu_hub.recognition.training import FOREST_CONFIGS, build_matrix, fit, to_onnx  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_root", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out: dict[str, Any] = {}
    for name, (folder, mapping, shippable) in HOMES.items():
        if not shippable:
            continue
        dataset = load_dataset(args.data_root / folder, ROOT / mapping)
        for per_device in (False, True):
            spec = DEFAULT_SPEC.with_sources(e.source for e in dataset.events) if per_device else DEFAULT_SPEC
            matrix = build_matrix(dataset, spec)
            for preset, config in FOREST_CONFIGS.items():
                model = fit(matrix.X, matrix.y, config)
                out[f"{name}/{'per_device' if per_device else 'channels'}/{preset}"] = {
                    "devices": len(spec.sources),
                    "features": spec.n_features,
                    "days": len(set(matrix.days.tolist())),
                    "scenes": len(model.classes_),
                    "tree_nodes": int(sum(t.tree_.node_count for t in model.estimators_)),
                    "onnx_bytes": len(to_onnx(model, spec)),
                }
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
