"""How a benchmark script hands over its figures: JSON on standard output, and the same text in ``--out``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any


def emit(result: Any, out: Path | None) -> None:
    """Print ``result`` as JSON; also write it to ``out`` when given (the file under bench/results/)."""
    text = json.dumps(result, indent=1)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    print(text)


def tree_name(path: Path) -> str:
    """A source tree measured, named by its git revision (with "+changes" when it has uncommitted ones), never by
    its path: results are committed, and a machine's paths mean nothing elsewhere."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    revision = git("rev-parse", "--short", "HEAD")
    if not revision:
        return "a tree outside git"
    return revision + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
