"""Scene files (YAML): parse_scene_text refuses bad input with SceneError and nothing else."""

from __future__ import annotations

from pathlib import Path

INSTRUMENT = ("qilu_hub.scenes",)
_ROOT = Path(__file__).resolve().parents[2]
SEEDS = [p.read_bytes() for p in sorted((_ROOT / "scenes").glob("*.yaml"))][:4]


def one(data: bytes) -> None:
    from qilu_hub.scenes.loader import SceneError, parse_scene_text

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        parse_scene_text(text)
    except SceneError as err:
        assert err.issues and all(isinstance(i.line, int) for i in err.issues)
