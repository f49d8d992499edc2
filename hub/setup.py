"""Assembly: which components a running hub has, in start order.

This is the one place that knows every part; the parts do not know each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import load_config
from .core import Hub


def build_hub(config_dir: Path | str, config: dict[str, Any] | None = None, *, demo: bool = False) -> Hub:
    """A hub with its standard components; ``demo`` adds simulated appliances on loopback."""
    config = config if config is not None else load_config(config_dir)
    hub = Hub(config_dir, config)
    if demo:
        from .virtual import VirtualAppliances

        hub.add_component(VirtualAppliances())
    return hub
