"""Assembly: which components a running hub has, in start order.

This is the one place that knows every part; the parts do not know each other.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from .config import load_config
from .core import Hub

# Modules that register a configuration section when imported. They are light (no protocol
# libraries), so the config can be validated before anything heavy is loaded.
_CONFIG_SECTION_MODULES = ("qilu_hub.mqtt.settings", "qilu_hub.discovery.settings", "qilu_hub.recognition.settings",
                           "qilu_hub.scenes.settings", "qilu_hub.backup", "qilu_hub.matter.settings")


def load_hub_config(config_dir: Path | str) -> dict[str, Any]:
    """Validate the config directory's file against the core's and every part's sections."""
    for module in _CONFIG_SECTION_MODULES:
        importlib.import_module(module)
    return load_config(config_dir)


def build_hub(config_dir: Path | str, config: dict[str, Any] | None = None, *, demo: bool = False) -> Hub:
    """A hub with its standard components; ``demo`` adds simulated appliances on loopback."""
    config = config if config is not None else load_hub_config(config_dir)
    hub = Hub(config_dir, config)
    from qilu_hub.drivers.manager import DriverManager

    if demo:
        from qilu_hub.drivers.demo import DemoAppliances

        demo_appliances = DemoAppliances()
        hub.add_component(demo_appliances.fleet_closer())  # first, so the simulators stop last

    matter = config.get("matter") or {}
    with_matter = matter.get("server") == "managed" or bool(matter.get("url"))
    if with_matter:
        from .matter.controller import MatterController

        hub.add_component(MatterController())  # before the drivers: adopted Matter appliances start through it
    drivers = DriverManager()
    hub.add_component(drivers)
    from .appliances.lifecycle import ApplianceLifecycle

    if demo:
        # Loopback only: the demo never sends mDNS on the machine's network; BLE adverts come from the simulators.
        everything = {driver: True for driver in ("qoap", "shelly", "wled", "bthome", "xiaomi")}
        # ... unless the demo's configuration says otherwise: `discovery: {auto_adopt: {xiaomi: false}}` leaves that
        # sensor in the inbox, to try adopting by hand (docs/dashboard.md).
        everything.update((config.get("discovery") or {}).get("auto_adopt") or {})
        hub.add_component(ApplianceLifecycle(drivers, mdns_interfaces=["127.0.0.1"], ble_enabled=False,
                                             auto_adopt=everything))
    elif with_matter:
        # Matter appliances announce themselves over IPv6 mDNS (often only there): browse it too.
        hub.add_component(ApplianceLifecycle(drivers, mdns_ipv6=True))
    else:
        hub.add_component(ApplianceLifecycle(drivers))
    if demo:
        from .virtual import VirtualAppliances

        hub.add_component(VirtualAppliances())
        hub.add_component(demo_appliances)  # after "drivers": it adopts its simulators through it
    from .recognition.settings import recognizer_from_config

    recognizer = recognizer_from_config(config, Path(config_dir))
    if recognizer is not None:
        hub.add_component(recognizer)
    from .recognition.labels import LabelStore

    hub.add_component(LabelStore())  # household labels for training (API/dashboard); before the API
    from .scenes.manager import from_config as scenes_from_config

    hub.add_component(scenes_from_config(config_dir, config))
    if (config.get("mqtt") or {}).get("enabled"):
        from .mqtt import MqttBridge

        hub.add_component(MqttBridge())
    from .backup import scheduler_from_config

    backups = scheduler_from_config(Path(config_dir), config)
    if backups is not None:
        hub.add_component(backups)
    # Last, so it stops first: clients are told the hub is going before the parts behind it stop.
    from .api import ApiServer

    hub.add_component(ApiServer())
    return hub
