"""Constants shared across the hub."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("qilu-hub")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

DEFAULT_PORT = 8123
DEFAULT_BIND = "127.0.0.1"
CONFIG_FILE = "configuration.yaml"
REGISTRY_DB = "registry.db"
HISTORY_DB = "history.db"
