"""The ``recognition:`` section of the hub configuration and building the component from it.

Importing this module only registers the section (for ``qilu_hub.setup._CONFIG_SECTION_MODULES``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qilu_hub.config import f, register_section

if TYPE_CHECKING:
    from .component import SceneRecognizer

SECTION = "recognition"
# The household's own models live in its config dir under these names: `qilu-hub model train` writes there by
# default, and the hub loads them when the section names no model (before falling back to the bundled one).
HOUSEHOLD_MODEL = "household_scene.onnx"
HOUSEHOLD_REVIEW_MODEL = "household_scene_review.onnx"
register_section(
    SECTION,
    {
        "enabled": f(bool, default=True, help="Recognise the household scene"),
        "model": f(str, type(None), default=None,
                   help=f"ONNX model path (default: {HOUSEHOLD_MODEL} in the config dir if present, else the bundled "
                        "model)"),
        "review_model": f(str, type(None), default=None,
                          help=f"Day-review ONNX model ('model train --review'); default: {HOUSEHOLD_REVIEW_MODEL} in "
                               "the config dir if present, else review with the live model"),
        "interval": f(float, int, default=60, minimum=5, help="Seconds between scheduled inferences"),
        "debounce": f(float, int, default=2, minimum=0, help="Seconds to wait after an event before inferring"),
    },
)


def household_model(config_dir: Path | None, review: bool = False) -> Path | None:
    """The household's own model in ``config_dir`` (what ``model train`` writes by default), if it exists."""
    if config_dir is None:
        return None
    path = config_dir / (HOUSEHOLD_REVIEW_MODEL if review else HOUSEHOLD_MODEL)
    return path if path.is_file() else None


def recognizer_from_config(config: dict[str, Any], config_dir: Path | None = None) -> SceneRecognizer | None:
    """The component configured by ``config`` (a loaded hub config), or None when disabled."""
    section = config.get(SECTION) or {}
    if not section.get("enabled", True):
        return None
    # Only when building an enabled recognizer: validating the configuration, or a hub with recognition off,
    # does not load numpy and the model's runtime with the component.
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from .component import DEFAULT_MODEL, SceneRecognizer

    def configured(key: str) -> Path | None:
        """A model path from the section; relative paths are relative to the config dir."""
        if not section.get(key):
            return None
        path = Path(section[key])
        return config_dir / path if config_dir is not None and not path.is_absolute() else path

    path = configured("model") or household_model(config_dir) or DEFAULT_MODEL
    review = configured("review_model") or household_model(config_dir, review=True)
    try:
        tz = ZoneInfo(str((config.get("hub") or {}).get("time_zone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        tz = None  # fall back to the host's zone
    return SceneRecognizer(
        path, interval=float(section.get("interval", 60)), debounce=float(section.get("debounce", 2)), tz=tz,
        review_model_path=review,
    )
