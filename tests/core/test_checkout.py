"""The suite tests the checkout it lives in: no other copy of the packages (a `pip install .` into the venv,
its `build/` folder, an older clone on PYTHONPATH) may stand in for it, in the test process or in the
subprocesses the tests start."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("qilu_hub", "qilu_hub.drivers", "qilu_hub.xr_bridge", "qilu_hub.firmware_tests", "qilu_hub.scene_files",
            "qilu_hub.models")
HINT = "the checkout is not what runs: reinstall it editable (pip install -e '.[test]') or set PYTHONPATH to it"


def _outside_the_checkout(origins: dict[str, str]) -> dict[str, str]:
    return {name: path for name, path in origins.items()
            if not Path(path).resolve().is_relative_to(ROOT) or Path(path).resolve().is_relative_to(ROOT / "build")}


def test_the_suite_imports_the_checkout() -> None:
    origins = {name: str(importlib.import_module(name).__path__[0]) for name in PACKAGES}
    assert not _outside_the_checkout(origins), f"{HINT}: {origins}"


def test_subprocesses_import_the_checkout_from_any_directory(tmp_path: Path) -> None:
    """Tests start `python -m qilu_hub ...`; from another working directory that must still be this checkout."""
    script = ("import importlib, json\n"
              f"print(json.dumps({{n: importlib.import_module(n).__path__[0] for n in {PACKAGES!r}}}))")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=dict(os.environ), capture_output=True,
                         text=True, timeout=60, check=True).stdout
    origins = json.loads(out)
    assert not _outside_the_checkout(origins), f"{HINT}: {origins}"
