"""Simulated homes written to disk as a dataset any mapping file can read: what the CLI tests train and score on."""

from __future__ import annotations

import json
from pathlib import Path

from qilu_hub.recognition.datasets import Dataset


def export_home(sim: Dataset, root: Path) -> tuple[Path, Path]:
    """A simulated home as a recorder JSONL export plus the mapping file that reads it back."""
    root.mkdir(parents=True)
    rows, sensors = [], {}
    for e in sim.events:
        key = f"{e.area}.{e.capability}.{e.source}".replace(" ", "_")
        sensors[key] = (e.area, e.capability)
        rows.append(json.dumps({"ts": e.ts, "entity_id": key, "value": "on" if e.active else "off"}))
    (root / "history.jsonl").write_text("\n".join(rows) + "\n")
    (root / "labels.jsonl").write_text("\n".join(
        json.dumps({"start": iv.start, "end": iv.end, "label": iv.label}) for iv in sim.intervals) + "\n")
    lines = ["format: recorder_jsonl", "unlabelled: idle", "sensors:"]
    lines += [f"  {k}: {{area: {a}, capability: {c}, active: ['on']}}" for k, (a, c) in sorted(sensors.items())]
    lines += ["activities:"] + [f"  {s}: {s}" for s in sorted({iv.label for iv in sim.intervals})]
    mapping = root.parent / f"{root.name}.yaml"
    mapping.write_text("\n".join(lines) + "\n")
    return root, mapping
