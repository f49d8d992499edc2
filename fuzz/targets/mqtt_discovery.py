"""MQTT discovery payloads (Home Assistant format), then a state message through the imported spec."""

from __future__ import annotations

import contextlib
import json

import atheris

INSTRUMENT = ("hub.mqtt",)
SEEDS = [
    json.dumps({"name": "Lamp", "uniq_id": "l1", "stat_t": "x/state", "cmd_t": "x/set", "schema": "json",
                "brightness": True}).encode(),
    json.dumps({"name": "T", "uniq_id": "t1", "stat_t": "t/s", "dev_cla": "temperature",
                "val_tpl": "{{ value_json.temp | round(1) }}", "unit_of_meas": "°C"}).encode(),
]
COMPONENTS = ("light", "switch", "sensor", "binary_sensor", "cover", "fan", "climate", "lock", "device")


def one(data: bytes) -> None:
    from hub.mqtt.importer import DiscoveryError, parse_device_discovery, parse_discovery, read_source
    from hub.mqtt.template import TemplateError

    fdp = atheris.FuzzedDataProvider(data)
    component = COMPONENTS[fdp.ConsumeIntInRange(0, len(COMPONENTS) - 1)]
    message = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
    try:
        payload = json.loads(fdp.ConsumeBytes(fdp.remaining_bytes()))
    except (ValueError, RecursionError):
        return
    if not isinstance(payload, dict):
        return
    topic = f"homeassistant/{component}/node/obj/config"
    try:
        if component == "device":
            specs = [spec for _, spec in parse_device_discovery("homeassistant", topic, payload)
                     if not isinstance(spec, DiscoveryError)]
        else:
            specs = [parse_discovery("homeassistant", topic, payload)]
    except DiscoveryError as err:
        assert str(err)
        return
    for spec in specs:
        for source in spec.sources:
            with contextlib.suppress(TemplateError):
                read_source(spec, source, message, None, {})
