#!/usr/bin/env python3
"""Type-check the installed namespace: lay the folders out as ``pip install`` does, then run mypy on ``qilu_hub``.

mypy cannot follow setuptools' editable-install import hook (with ``ignore_missing_imports`` every ``qilu_hub``
import would silently be ``Any``), so this builds ``.cache/typecheck/qilu_hub`` from ``package-dir`` in
pyproject.toml, one symlink per entry, and runs mypy there.

    .venv/bin/python scripts/typecheck.py            # extra arguments go to mypy
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lay_out(into: Path) -> str:
    """Symlink each mapped folder's entries under ``into`` as its package name; return the namespace's name."""
    shutil.rmtree(into, ignore_errors=True)
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-dir"]
    for name, folder in sorted(mapping.items()):
        target = into.joinpath(*name.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for entry in (ROOT / folder).iterdir():
            if entry.name != "__pycache__" and not (target / entry.name).exists():
                (target / entry.name).symlink_to(entry)
    return min(mapping, key=len)


def main() -> int:
    into = ROOT / ".cache" / "typecheck"
    namespace = lay_out(into)
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "-p", namespace,
               *sys.argv[1:]]
    return subprocess.run(command, cwd=into).returncode


if __name__ == "__main__":
    sys.exit(main())
