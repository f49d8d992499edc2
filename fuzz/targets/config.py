"""configuration.yaml: load_config refuses bad input with ConfigError (with a line) and nothing else."""

from __future__ import annotations

import tempfile
from pathlib import Path

INSTRUMENT = ("qilu_hub.config",)
SEEDS = [b"hub:\n  name: Home\n  port: 8123\nrecorder:\n  keep_days: 3\nareas:\n  - name: Kitchen\n"]
_DIR = Path(tempfile.mkdtemp(prefix="fuzz-config-"))


def setup() -> None:
    import qilu_hub.setup  # noqa: F401  (registers every component's config section)


def one(data: bytes) -> None:
    from qilu_hub.config import CONFIG_FILE, ConfigError, load_config

    (_DIR / CONFIG_FILE).write_bytes(data)
    try:
        config = load_config(_DIR)
    except ConfigError as err:
        assert str(err)
        return
    assert isinstance(config, dict)
