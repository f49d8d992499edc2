"""Training data from a hub's own recorder history plus household labels (JSONL in the config dir)."""

from __future__ import annotations

from pathlib import Path

from .datasets import Dataset, DatasetError, events_from_history, load_labels, recorder_dataset
from .features import DEFAULT_SPEC, FeatureSpec
from .mapping import entity_channel

LABELS_FILE = "recognition_labels.jsonl"


async def async_load_recorder(
    config_dir: Path, labels: Path | None = None, start: float = 0.0, spec: FeatureSpec = DEFAULT_SPEC
) -> Dataset:
    """Read history through the hub's public recorder API and map entities as the live component does.

    Opens the hub's registry and recorder with the hub's own configuration (so the recorder's retention
    settings are the hub's), reads, and closes them; other components are not started.
    """
    from hub import Hub
    from hub.const import HISTORY_DB
    from hub.setup import load_hub_config

    from . import settings  # noqa: F401 - registers the "recognition" config section before the hub loads it

    labels_path = labels or config_dir / LABELS_FILE
    if not labels_path.is_file():
        raise DatasetError(f"household labels {labels_path} not found (JSONL rows: start, end, label)")
    if not (config_dir / HISTORY_DB).is_file():
        raise DatasetError(f"{config_dir} has no recorder history ({HISTORY_DB})")
    # The hub's own, fully validated config: the recorder keeps the hub's retention settings.
    hub = Hub(config_dir, load_hub_config(config_dir))
    recorder = hub.recorder
    if recorder is None:
        raise DatasetError("the hub's recorder is disabled")
    await recorder.async_start(hub)
    try:
        rows = await recorder.async_history(start, None, None, limit=10_000_000)
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

    return recorder_dataset(events_from_history(rows, resolve), load_labels(labels_path))
