"""SIGKILL a hub during heavy writes 20 times: no acknowledged registry data lost, databases intact."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "scripts" / "reliability" / "crash_loop.py"


def test_sigkill_during_heavy_writes_loses_no_registry_data(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("crash_loop", SCRIPT)
    assert spec is not None and spec.loader is not None
    crash_loop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(crash_loop)
    result = crash_loop.run(rounds=20, config_dir=tmp_path)
    assert result["failures"] == []
    assert result["kills_survived"] == 20
    assert result["acknowledged_devices"] > 20  # the child really was writing when killed
    assert result["history_max_bytes_seen"] <= result["history_cap_bytes"]
