"""Training data from a hub's own recorder history plus the household's labels.

Labels come from the label store in the hub's registry (given through the API or dashboard, see
``labels.py``) and, for compatibility, from a labels JSONL file (``--labels``, or the hand-written
``CONFIG_DIR/recognition_labels.jsonl`` when present); a row in both counts once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .datasets import Dataset, DatasetError, events_from_history, recorder_dataset
from .features import DEFAULT_SPEC, FeatureSpec
from .labels import LABELS_FILE, read_labels_file, stored_labels, training_intervals
from .mapping import entity_channel

__all__ = ["LABELS_FILE", "async_load_recorder"]

NO_LABELS = ("no household labels: label what is happening in the dashboard (\"What's happening now?\"), "
             "POST /api/recognition/labels, or write {path} (JSONL rows: start, end, label)")


async def async_load_recorder(
    config_dir: Path, labels: Path | None = None, start: float = 0.0, spec: FeatureSpec = DEFAULT_SPEC,
    *, config: dict[str, Any] | None = None,
) -> Dataset:
    """Read history through the hub's public recorder API and map entities as the live component does.

    Opens the hub's registry and recorder with the hub's own configuration (so the recorder's retention
    settings are the hub's), reads, and closes them; other components are not started. ``config`` is the
    hub's validated configuration (the CLI passes the one validated against every part's sections);
    without it the directory's file is read against the core's and the recognizer's sections.
    """
    from qilu_hub import Hub
    from qilu_hub.config import load_config
    from qilu_hub.const import HISTORY_DB, REGISTRY_DB

    from . import settings  # noqa: F401 - registers the "recognition" config section before the hub loads it

    labels_path = labels or config_dir / LABELS_FILE
    if labels is not None and not labels.is_file():
        raise DatasetError(f"household labels {labels} not found (JSONL rows: start, end, label)")
    if not labels_path.is_file() and not (config_dir / REGISTRY_DB).is_file():
        raise DatasetError(NO_LABELS.format(path=labels_path))
    if not (config_dir / HISTORY_DB).is_file():
        raise DatasetError(f"{config_dir} has no recorder history ({HISTORY_DB})")
    # The hub's own, fully validated config: the recorder keeps the hub's retention settings.
    hub = Hub(config_dir, config if config is not None else load_config(config_dir))
    recorder = hub.recorder
    if recorder is None:
        raise DatasetError("the hub's recorder is disabled")
    await recorder.async_start(hub)
    try:
        rows = await recorder.async_history(start, None, None, limit=10_000_000)
        household = stored_labels(hub.storage)
    finally:
        await recorder.async_stop()
        await hub.supervisor.stop()
        hub.storage.close()

    def resolve(entity_id: str) -> tuple[str, str] | None:
        entity = hub.entities.get(entity_id)
        if entity is None:
            return None
        area = hub.area_of(entity_id)
        return entity_channel(entity.domain, tuple(entity.capabilities), entity.device_class, area, spec.areas)

    if labels_path.is_file():
        household += read_labels_file(labels_path)
    intervals = training_intervals(household, time.time())
    if not intervals:
        raise DatasetError(NO_LABELS.format(path=labels_path))
    return recorder_dataset(events_from_history(rows, resolve), intervals)
