"""docs/writing-a-driver.md is runnable: its Python blocks form a driver, a simulator and a check."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing-a-driver.md"


def load_tutorial() -> types.ModuleType:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 5, "the tutorial lost code blocks"
    module = types.ModuleType("acme_tutorial")
    sys.modules["acme_tutorial"] = module
    exec(compile("\n".join(blocks), str(DOC), "exec"), module.__dict__)
    return module


async def test_tutorial_driver_works_end_to_end(tmp_path: Path) -> None:
    tutorial = load_tutorial()
    await tutorial.check_acme_plug(str(tmp_path))
    sys.modules.pop("acme_tutorial", None)
