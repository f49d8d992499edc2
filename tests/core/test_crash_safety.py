"""SIGKILL a hub during heavy writes, many times: no acknowledged registry data lost, databases intact."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from hub.bus import EventBus
from hub.registry import AreaRegistry, DeviceRegistry, EntityRegistry
from hub.storage import RegistryStore

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).parents[2]


def test_sigkill_during_heavy_writes_loses_no_registry_data(tmp_path: Path) -> None:
    rng = random.Random(1234)
    acked: dict[str, str] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _round in range(20):
        proc = subprocess.Popen([sys.executable, str(WRITER), str(tmp_path)], stdout=subprocess.PIPE, text=True,
                                env=env)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # wait until it is writing
        assert first.startswith("ACK"), first
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        for line in (first + out).splitlines():
            if line.startswith("ACK "):
                _, device_id, entity_id = line.split()
                acked[device_id] = entity_id
        for name in ("registry.db", "history.db"):
            conn = sqlite3.connect(tmp_path / name)
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            conn.close()
        store = RegistryStore(tmp_path / "registry.db")
        bus = EventBus()
        devices = DeviceRegistry(store, bus)
        entities = EntityRegistry(store, bus, devices, AreaRegistry(store, bus))
        missing = [d for d in acked if devices.get(d) is None]
        assert not missing, f"round {_round}: {len(missing)} acknowledged devices lost"
        assert all(entities.get(e) is not None for e in acked.values())
        store.close()
    assert len(acked) > 20
