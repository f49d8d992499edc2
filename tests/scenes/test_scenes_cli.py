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


def _placed(relative_to: str, ref: str) -> str:
    """The example scene with its sofa panel placed on ``relative_to: ref`` instead of the living room."""
    return EXAMPLE.read_text().replace("{relative_to: area, ref: living_room,", f"{{relative_to: {relative_to}, "
                                                                              f"ref: {ref},")


async def test_placements_must_name_a_device_or_area_the_registry_knows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong device id used to pass and silently put the panel at the stage origin; `qilu-hub devices` prints
    the ids a scene author needs."""
    await _populate(tmp_path)
    assert main(["--config", str(tmp_path), "devices"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    lamp_id = next(row[0] for row in rows if "light.living_room_ceiling_light" in " ".join(row))
    assert len(lamp_id) == 32 and int(lamp_id, 16) >= 0
    scene = tmp_path / "placed.yaml"
    scene.write_text(_placed("device", lamp_id))
    assert main(["--config", str(tmp_path), "scenes", "check", str(scene)]) == 0
    capsys.readouterr()
    wrong = lamp_id[:-1] + ("0" if lamp_id[-1] != "0" else "1")
    scene.write_text(_placed("device", wrong))
    assert main(["--config", str(tmp_path), "scenes", "check", str(scene)]) == 3
    err = capsys.readouterr().err
    assert f"panel 'sofa': unknown device id '{wrong}'" in err and "qilu-hub devices" in err
    scene.write_text(_placed("area", "Living Room"))  # the area's name, not its id
    assert main(["--config", str(tmp_path), "scenes", "check", str(scene)]) == 3
    assert "the area named 'Living Room' has id 'living_room'" in capsys.readouterr().err
    scene.write_text(_placed("area", "attic"))  # configured but the hub never started since: still known
    (tmp_path / "configuration.yaml").write_text("areas:\n  - name: Attic\n")
    assert main(["--config", str(tmp_path), "scenes", "check", str(scene)]) == 0
