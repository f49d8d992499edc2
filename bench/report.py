"""How a benchmark script hands over its figures: JSON on standard output, and the same text in ``--out``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit(result: Any, out: Path | None) -> None:
    """Print ``result`` as JSON; also write it to ``out`` when given (the file under bench/results/)."""
    text = json.dumps(result, indent=1)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    print(text)
