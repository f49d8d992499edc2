"""build_hub: the standard hub has its standard components, in an order that starts and stops cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from qilu_hub.const import CONFIG_FILE
from qilu_hub.setup import build_hub


def test_standard_components_and_order(tmp_path: Path) -> None:
    # Not started: a non-demo hub would browse mDNS on every interface, which tests never do.
    hub = build_hub(tmp_path, {"hub": {"port": 0}})
    names = list(hub.components)
    for required in ("drivers", "discovery", "recognition_labels", "scenes", "api"):
        assert required in names
    # The API stops first (it is last), so clients are told before what serves them goes away; the label
    # store it serves must still be there when it stops.
    assert names[-1] == "api" and names.index("recognition_labels") < names.index("api")
    assert names.index("drivers") < names.index("discovery")  # discovery hands appliances to the drivers
    assert "mqtt" not in names  # only when configured


def test_demo_fleet_stops_after_the_drivers(tmp_path: Path) -> None:
    names = list(build_hub(tmp_path, {"hub": {"port": 0}}, demo=True).components)
    assert names.index("drivers-demo-fleet") < names.index("drivers") < names.index("drivers-demo")


def test_a_hub_without_mqtt_loads_no_mqtt_client(tmp_path: Path) -> None:
    """Every hub validates its configuration through the mqtt package (its section); the bridge and what it
    imports (aiomqtt, paho, jinja2: ~7 MiB) load only when the bridge is built (``mqtt.enabled``)."""
    heavy = ("aiomqtt", "paho", "jinja2", "qilu_hub.mqtt.bridge")
    (tmp_path / CONFIG_FILE).write_text("hub:\n  port: 0\nrecognition:\n  enabled: false\n")
    code = ("import sys; from qilu_hub.setup import build_hub; hub = build_hub(sys.argv[1]); "  # reads the file
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
    hub = build_hub(tmp_path, {"hub": {"port": 0}, "mqtt": {"enabled": True}})
    assert type(hub.components["mqtt"]).__module__ == "qilu_hub.mqtt.bridge"  # and with it, the bridge


# Started in a fresh interpreter: discovery off (no traffic off loopback), the API on a free loopback port. The
# label store takes a label and gives the intervals training reads; then the modules the process holds are listed.
_START_AND_LIST = """
import asyncio, sys, time
from qilu_hub.setup import build_hub

async def main(config_dir, heavy):
    hub = build_hub(config_dir)
    await hub.async_start()
    try:
        store = hub.components["recognition_labels"]
        start = time.time() - 3_600.0
        store.add("cooking", start=start, end=start + 600.0)
        assert [(iv.start, iv.end, iv.label) for iv in store.intervals()] == [(start, start + 600.0, "cooking")]
        print(",".join(m for m in heavy if m in sys.modules))
    finally:
        await hub.async_stop()

asyncio.run(main(sys.argv[1], sys.argv[2:]))
"""


def test_a_running_hub_without_the_recognizer_loads_no_numpy(tmp_path: Path) -> None:
    """Every hub has the label store (recognition labels for training) and validates the ``recognition:`` section;
    neither needs numpy (~18 MiB) nor the model's runtime, which once came in with the recognition package's
    ``__init__`` and the datasets module (for ``Interval``). With the recognizer on they load, as they must."""
    heavy = ("numpy", "onnxruntime", "zoneinfo", "qilu_hub.recognition.datasets", "qilu_hub.recognition.component")
    base = ("hub:\n  bind: 127.0.0.1\n  port: 0\n"
            "discovery:\n  mdns:\n    enabled: false\n  ble:\n    enabled: false\n")
    loaded = {}
    for recognizer in (False, True):
        config_dir = tmp_path / str(recognizer)
        config_dir.mkdir()
        (config_dir / CONFIG_FILE).write_text(base + f"recognition:\n  enabled: {str(recognizer).lower()}\n")
        out = subprocess.run([sys.executable, "-c", _START_AND_LIST, str(config_dir), *heavy],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        loaded[recognizer] = set(filter(None, out.stdout.strip().split(",")))
    assert loaded[False] == set()
    assert {"numpy", "onnxruntime", "qilu_hub.recognition.component"} <= loaded[True]
