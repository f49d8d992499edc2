"""build_hub: the standard hub has its standard components, in an order that starts and stops cleanly."""

from __future__ import annotations

from pathlib import Path

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
