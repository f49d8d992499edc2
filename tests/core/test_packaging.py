"""The installed package: one namespace (qilu_hub), and pyproject.toml's package list covers every folder.

setuptools' package-dir mapping needs the packages listed by name; a new folder missing from the list would
still import in an editable install (so the rest of the suite passes) but be left out of the wheel.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_folder_is_a_listed_package() -> None:
    config = _config()
    expected = set()
    for new, folder in config["package-dir"].items():
        for dirpath, dirnames, filenames in os.walk(ROOT / folder):
            dirnames[:] = [d for d in dirnames if d not in SKIP and not d.startswith(".")]
            if any(not f.endswith(".pyc") for f in filenames):
                expected.add(".".join([new, *Path(dirpath).relative_to(ROOT / folder).parts]))
    assert set(config["packages"]) == expected


def test_one_top_level_name() -> None:
    config = _config()
    assert {p.split(".")[0] for p in config["packages"]} == {"qilu_hub"}
    assert set(config["package-dir"]) >= {"qilu_hub", "qilu_hub.drivers", "qilu_hub.models"}
