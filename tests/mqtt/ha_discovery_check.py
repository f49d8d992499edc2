"""Check MQTT discovery configs with Home Assistant's own code; run by the Home Assistant venv's Python.

Not a test module and not part of qilu-hub: ``tests/mqtt/test_ha_discovery.py`` runs it as
``.cache/ha-venv/bin/python tests/mqtt/ha_discovery_check.py`` (the venv that ``scripts/ha-venv.sh`` makes) with a
JSON request on stdin and reads a JSON answer on stdout. It imports nothing of qilu-hub.

Request: ``{"prefix": "homeassistant", "configs": [[topic, payload text], ...], "tables": {...}, "states":
{entity_id: attributes}}``.
Each config goes the way Home Assistant's MQTT discovery takes it (homeassistant/components/mqtt/discovery.py):
the topic must match its topic pattern and name a supported component, abbreviations are expanded, the origin
block is checked, and the component's ``DISCOVERY_SCHEMA`` validates the payload. Sensors are also checked
against the unit and state class tables Home Assistant's sensor entity enforces when it writes a state
(``DEVICE_CLASS_UNITS``, ``DEVICE_CLASS_STATE_CLASSES``). ``tables`` are qilu-hub's copies of Home Assistant
facts (feature bits, device classes), compared with this release's enums. ``states`` are attributes as the
HA-compatible API serves them, checked with the rules Home Assistant's own sensor, light and climate entities
follow.

Answer: ``{"version": ..., "results": [{"topic", "component", "error" or null, "config": the validated config}],
"tables": [mismatches], "states": {entity_id: what Home Assistant would object to}}``.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any


def _expand(payload: dict[str, Any]) -> dict[str, Any]:
    from homeassistant.components.mqtt.abbreviations import (
        ABBREVIATIONS,
        DEVICE_ABBREVIATIONS,
        ORIGIN_ABBREVIATIONS,
    )

    out = {ABBREVIATIONS.get(key, key): value for key, value in payload.items()}
    if isinstance(out.get("device"), dict):
        out["device"] = {DEVICE_ABBREVIATIONS.get(key, key): value for key, value in out["device"].items()}
    if isinstance(out.get("origin"), dict):
        out["origin"] = {ORIGIN_ABBREVIATIONS.get(key, key): value for key, value in out["origin"].items()}
    if isinstance(out.get("availability"), list):
        out["availability"] = [{ABBREVIATIONS.get(k, k): v for k, v in item.items()} if isinstance(item, dict)
                               else item for item in out["availability"]]
    return out


def _sensor_rules(config: dict[str, Any]) -> str | None:
    """What Home Assistant's SensorEntity reports (as errors or warnings) for a unit or state class that does not
    fit the device class."""
    from homeassistant.components.sensor.const import DEVICE_CLASS_STATE_CLASSES, DEVICE_CLASS_UNITS

    device_class = config.get("device_class")
    if device_class is None:
        return None
    unit = config.get("unit_of_measurement")
    units = DEVICE_CLASS_UNITS.get(device_class)
    if units is not None and unit not in units:
        return f"unit {unit!r} is not one of {sorted(map(str, units))} for device class {device_class}"
    state_class = config.get("state_class")
    classes = DEVICE_CLASS_STATE_CLASSES.get(device_class)
    if state_class is not None and classes is not None and state_class not in classes:
        return f"state class {state_class!r} is impossible for device class {device_class}"
    return None


def check_config(prefix: str, topic: str, text: str) -> dict[str, Any]:
    from homeassistant.components.mqtt.discovery import (
        MQTT_ORIGIN_INFO_SCHEMA,
        SUPPORTED_COMPONENTS,
        TOPIC_MATCHER,
    )

    result: dict[str, Any] = {"topic": topic, "component": None, "error": None, "config": None}
    match = TOPIC_MATCHER.match(topic.removeprefix(prefix + "/"))
    if not topic.startswith(prefix + "/") or match is None:
        result["error"] = "illegal discovery topic"
        return result
    component = match.group("component")
    result["component"] = component
    if component not in SUPPORTED_COMPONENTS:
        result["error"] = f"component {component} is not supported"
        return result
    try:
        payload = _expand(json.loads(text))
        if "origin" in payload:
            MQTT_ORIGIN_INFO_SCHEMA(payload["origin"])
        payload["platform"] = "mqtt"
        module = importlib.import_module(f"homeassistant.components.mqtt.{component}")
        config = module.DISCOVERY_SCHEMA(payload)
    except Exception as err:  # voluptuous' Invalid, or JSON: either way Home Assistant refuses the entity
        result["error"] = f"{type(err).__name__}: {err}"
        return result
    if component == "sensor":
        result["error"] = _sensor_rules(config)
    result["config"] = json.loads(json.dumps(config, default=str))
    return result


def check_tables(tables: dict[str, Any]) -> list[str]:
    """qilu-hub's copies of Home Assistant's feature bits and device classes, against this release's enums."""
    mismatches = []
    for domain, (enum_name, members) in tables.get("features", {}).items():
        module = importlib.import_module(f"homeassistant.components.{domain}")
        enum = getattr(module, enum_name)
        for member, value in members.values():
            actual = getattr(enum, member, None)
            if actual is None or int(actual) != value:
                mismatches.append(f"{enum_name}.{member} is {actual!r} in Home Assistant, {value} in qilu-hub")
    for domain, classes in tables.get("device_classes", {}).items():
        module = importlib.import_module(f"homeassistant.components.{domain}")
        enum_name = "".join(part.capitalize() for part in domain.split("_")) + "DeviceClass"
        known = {str(member.value) for member in getattr(module, enum_name)}
        extra = sorted(set(classes) - known)
        if extra:
            mismatches.append(f"{enum_name} lacks {extra}")
    return mismatches


def check_state(entity_id: str, attributes: dict[str, Any]) -> str | None:
    """What Home Assistant's own entity classes would refuse or warn about in a state's attributes (as a state
    read through the HA-compatible API): sensor units and state classes, light colour modes, climate modes."""
    domain = entity_id.split(".", 1)[0]
    if domain == "sensor":
        return _sensor_rules(attributes)
    if domain == "light":
        from homeassistant.components.light import ColorMode, valid_supported_color_modes

        try:
            modes = valid_supported_color_modes(attributes.get("supported_color_modes") or [])
        except Exception as err:
            return str(err)
        if {str(mode) for mode in modes} - {str(mode.value) for mode in ColorMode}:
            return f"unknown colour modes in {sorted(map(str, modes))}"
        if attributes.get("color_mode") not in (None, *modes):
            return f"color_mode {attributes.get('color_mode')!r} is not one of {sorted(map(str, modes))}"
    if domain == "climate":
        from homeassistant.components.climate import HVACMode

        unknown = set(attributes.get("hvac_modes") or []) - {str(mode.value) for mode in HVACMode}
        if unknown:
            return f"unknown hvac_modes {sorted(unknown)}"
    return None


def main() -> int:
    from homeassistant.const import __version__

    request = json.load(sys.stdin)
    answer = {
        "version": __version__,
        "results": [check_config(request["prefix"], topic, text) for topic, text in request.get("configs", [])],
        "tables": check_tables(request.get("tables", {})),
        "states": {entity_id: error for entity_id, attributes in request.get("states", {}).items()
                   if (error := check_state(entity_id, attributes)) is not None},
    }
    json.dump(answer, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
