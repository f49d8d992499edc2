"""Constants shared across the hub."""

from __future__ import annotations

# The single source of the version: pyproject.toml reads it from here. Not importlib.metadata, which costs
# a running hub about 4.5 MiB of resident memory (it pulls in email, zipfile and csv) for one string.
__version__ = "0.1.0"

DEFAULT_PORT = 8123
DEFAULT_BIND = "127.0.0.1"
CONFIG_FILE = "configuration.yaml"
REGISTRY_DB = "registry.db"
HISTORY_DB = "history.db"

# Fired by the scene recognizer when the household scene changes; scene triggers listen for it.
EVENT_SCENE_RECOGNIZED = "scene_recognized"
# here rather than in scenes/watch.py: the XR API listens for it without importing the scene package (and YAML)
EVENT_XR_SCENES_UPDATED = "xr_scenes_updated"
