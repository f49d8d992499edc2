"""docs/writing-a-driver.md is runnable: its Python blocks form a driver, a simulator and a check, and they
import nothing of the hub but the SDK (what the guide tells an appliance maker to do)."""

from __future__ import annotations

import ast
import re
import sys
import types
from pathlib import Path

import qilu_hub.sdk
import qilu_hub.sdk.testing

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing-a-driver.md"


def tutorial_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 5, "the tutorial lost code blocks"
    return "\n".join(blocks)


def load_tutorial() -> types.ModuleType:
    module = types.ModuleType("acme_tutorial")
    sys.modules["acme_tutorial"] = module
    exec(compile(tutorial_source(), str(DOC), "exec"), module.__dict__)
    return module


def test_tutorial_imports_only_the_sdk() -> None:
    project = {qilu_hub.sdk.__name__.split(".")[0], "drivers"}
    imported = set()
    for node in ast.walk(ast.parse(tutorial_source())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    ours = {name for name in imported if name.split(".")[0] in project}
    assert ours == {qilu_hub.sdk.__name__, qilu_hub.sdk.testing.__name__}


async def test_tutorial_driver_works_end_to_end(tmp_path: Path) -> None:
    tutorial = load_tutorial()
    try:
        await tutorial.check_acme_plug(str(tmp_path))
    finally:
        sys.modules.pop("acme_tutorial", None)
