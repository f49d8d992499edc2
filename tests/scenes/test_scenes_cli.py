"""`qilu-hub scenes check`: scene authors get file:line errors without running the hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from qilu_hub import Hub
from qilu_hub.cli import main
from qilu_hub.virtual import VirtualAppliances

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "scenes" / "examples" / "living_room.yaml"


async def _populate(config_dir: Path) -> None:
    hub = Hub(config_dir, {}, recorder=False)
    hub.add_component(VirtualAppliances(animate=False))
    await hub.async_start()
    await hub.async_stop()


async def test_check_against_the_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await _populate(tmp_path)
    assert main(["--config", str(tmp_path), "scenes", "check", str(EXAMPLE)]) == 0
    assert "OK (2 home, 1 immersive)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("{temperature: 18}", "{temperature: 90}"))
    assert main(["--config", str(tmp_path), "scenes", "check", str(bad)]) == 3
    err = capsys.readouterr().err
    assert f"{bad}:18: climate.bedroom_thermostat.set_temperature:" in err and "temperature" in err


def test_schema_only_needs_no_hub(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenes", "check", "--schema-only", str(EXAMPLE)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nhome_scenes:\n  - name: Bad Name\n    targets: {light.a: turn_on}\n")
    assert main(["scenes", "check", "--schema-only", str(bad)]) == 3
    assert f"{bad}:3: home_scenes/0/name:" in capsys.readouterr().err
