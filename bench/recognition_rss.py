"""Memory the scene recogniser adds to a hub process, split by step, and what onnxruntime's session options
change.  Prints one JSON document (and writes it with --out).

    python bench/recognition_rss.py [--model models/household_scene.onnx] [--runs 5] [--out FILE]

Each probe is a fresh process: the hub imported (``qilu_hub.setup``), then onnxruntime imported, one session
created with the runtime's options (``runtime._session_options``) plus the variant's, 200 windows inferred;
VmRSS before and after each step, medians over ``--runs`` processes.  Variants: the hub's options as they
are; without the CPU memory arena; without memory patterns; without graph optimisation; intra-op spinning
off.  Run it with another onnxruntime on ``PYTHONPATH`` (a folder holding only that package) to compare
releases: the import's cost is the shared library, which differs by release.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
import numpy as np
import qilu_hub, qilu_hub.setup
base = rss()
import onnxruntime as ort
imported = rss()
from qilu_hub.recognition.features import DEFAULT_SPEC, FeatureExtractor
from qilu_hub.recognition.runtime import _session_options
opts = _session_options()
variant = sys.argv[3]
if variant == "no_cpu_mem_arena":
    opts.enable_cpu_mem_arena = False
elif variant == "no_mem_pattern":
    opts.enable_mem_pattern = False
elif variant == "no_graph_optimization":
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
elif variant == "no_spinning":
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
session = ort.InferenceSession(sys.argv[2], sess_options=opts, providers=["CPUExecutionProvider"])
loaded = rss()
name = session.get_inputs()[0].name
ex = FeatureExtractor(DEFAULT_SPEC)
for i in range(200):
    session.run(None, {name: ex.features(1.7e9 + 60 * i).reshape(1, -1).astype(np.float32)})
after = rss()
print(json.dumps({"version": ort.__version__, "base": base, "imported": imported, "loaded": loaded,
                  "after": after}))
"""
VARIANTS = ("hub_options", "no_cpu_mem_arena", "no_mem_pattern", "no_graph_optimization", "no_spinning")


def probe(model: Path, variant: str, runs: int) -> dict[str, Any]:
    rows = [json.loads(subprocess.run([sys.executable, "-c", PROBE, str(ROOT), str(model), variant],
                                      capture_output=True, text=True, check=True).stdout) for _ in range(runs)]

    def med(a: str, b: str) -> float:
        return round(statistics.median(r[b] - r[a] for r in rows), 1)

    return {"onnxruntime": rows[0]["version"], "added_mib": med("base", "after"),
            "import_mib": med("base", "imported"), "session_mib": med("imported", "loaded"),
            "inference_mib": med("loaded", "after")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "household_scene.onnx")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = {"what": "VmRSS added to a process with the hub imported: onnxruntime import, one session of the "
                      "model, 200 inferences; median of runs, MiB",
              "model": args.model.name, "model_bytes": args.model.stat().st_size, "runs": args.runs,
              "variants": {v: probe(args.model, v, args.runs) for v in args.variants}}
    text = json.dumps(result, indent=1)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
