"""MQTT discovery payloads (Home Assistant format), then a state message through the imported spec."""

from __future__ import annotations

import contextlib
import json

INSTRUMENT = ("qilu_hub.mqtt",)
SEEDS = [b"\x00ON\x00" + seed for seed in (
    json.dumps({"name": "Lamp", "uniq_id": "l1", "stat_t": "x/state", "cmd_t": "x/set", "schema": "json",
                "brightness": True}).encode(),
    json.dumps({"name": "T", "uniq_id": "t1", "stat_t": "t/s", "dev_cla": "temperature",
                "val_tpl": "{{ value_json.temp | round(1) }}", "unit_of_meas": "°C"}).encode(),
    json.dumps({"name": "C", "uniq_id": "c1", "stat_t": "c/s", "cmd_t": "c/set", "pos_t": "c/pos"}).encode(),
)]
COMPONENTS = ("light", "switch", "sensor", "binary_sensor", "cover", "fan", "climate", "lock", "device")


def one(data: bytes) -> None:
    from qilu_hub.mqtt.importer import DiscoveryError, parse_device_discovery, parse_discovery, read_source
    from qilu_hub.mqtt.template import TemplateError

    # Layout: one byte picks the component, then the state message up to a NUL, then the JSON config.
    # Keeping the JSON contiguous lets libFuzzer's mutations stay valid JSON often enough to go deep.
    if not data:
        return
    component = COMPONENTS[data[0] % len(COMPONENTS)]
    message, _, config = data[1:].partition(b"\x00")
    try:
        payload = json.loads(config)
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
