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
