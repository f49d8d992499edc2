"""The ``recognition:`` section of the hub configuration and building the component from it.

Importing this module only registers the section (for ``qilu_hub.setup._CONFIG_SECTION_MODULES``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from qilu_hub.config import f, register_section

if TYPE_CHECKING:
    from .component import SceneRecognizer

SECTION = "recognition"
register_section(
    SECTION,
    {
        "enabled": f(bool, default=True, help="Recognise the household scene"),
        "model": f(str, type(None), default=None, help="ONNX model path (default: the bundled model)"),
        "review_model": f(str, type(None), default=None,
                          help="Day-review ONNX model ('model train --review'); default: review with the live model"),
        "interval": f(float, int, default=60, minimum=5, help="Seconds between scheduled inferences"),
        "debounce": f(float, int, default=2, minimum=0, help="Seconds to wait after an event before inferring"),
    },
)


def recognizer_from_config(config: dict[str, Any], config_dir: Path | None = None) -> SceneRecognizer | None:
    """The component configured by ``config`` (a loaded hub config), or None when disabled."""
    from .component import DEFAULT_MODEL, SceneRecognizer  # only when building, not when validating config
    section = config.get(SECTION) or {}
    if not section.get("enabled", True):
        return None

    def configured(key: str) -> Path | None:
        """A model path from the section; relative paths are relative to the config dir."""
        if not section.get(key):
            return None
        path = Path(section[key])
        return config_dir / path if config_dir is not None and not path.is_absolute() else path

    path = configured("model") or DEFAULT_MODEL
    review = configured("review_model")
    try:
        tz = ZoneInfo(str((config.get("hub") or {}).get("time_zone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        tz = None  # fall back to the host's zone
    return SceneRecognizer(
        path, interval=float(section.get("interval", 60)), debounce=float(section.get("debounce", 2)), tz=tz,
        review_model_path=review,
    )
