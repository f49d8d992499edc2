"""Appliance-profile (QOAP) descriptions and state messages: the checks, then the entity builder."""

from __future__ import annotations

import json

INSTRUMENT = ("qilu_hub.drivers.qoap",)
SEEDS = [
    json.dumps({"qoap": 1, "id": "x", "name": "Lamp", "entities": [
        {"key": "light", "name": "Light", "capabilities": ["power", "brightness"]}]}).encode(),
]


def one(data: bytes) -> None:
    from qilu_hub.drivers.qoap.driver import descriptions_from
    from qilu_hub.drivers.qoap.profile import caps_summary, description_errors, state_errors

    try:
        description = json.loads(data)
    except (ValueError, RecursionError):
        return
    errors = description_errors(description)
    assert isinstance(errors, list)
    if errors:
        return
    caps_summary(description)
    descs = descriptions_from(description)
    for entity in description.get("entities", []):
        state_errors(list(entity.get("capabilities", [])), entity.get("name"), entity)
    assert isinstance(descs, list)
