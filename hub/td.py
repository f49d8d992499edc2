"""W3C Web of Things Thing Description (TD 1.1) export, generated from the capability catalogue.

Each entity becomes a property (its state, readable over the REST API) and each of its
commands an action whose input schema is the command's argument schema. Spec:
https://www.w3.org/TR/wot-thing-description11/
"""

from __future__ import annotations

from typing import Any

from . import capabilities as caps
from .model import Device, Entity

TD_CONTEXT = "https://www.w3.org/2022/wot/td/v1.1"


def _state_schema(entity: Entity) -> dict[str, Any]:
    schema = caps.get(entity.capabilities[0]).state.json_schema()
    schema["readOnly"] = True
    return schema


def thing_description(
    device: Device, entities: list[Entity], base_url: str = "http://127.0.0.1:8123"
) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    actions: dict[str, Any] = {}
    for entity in entities:
        key = entity.entity_id.replace(".", "__")
        prop = _state_schema(entity)
        prop.update({
            "title": entity.name,
            "observable": True,
            "forms": [
                {"href": f"/api/states/{entity.entity_id}", "op": ["readproperty"], "contentType": "application/json"},
                {"href": "/api/websocket", "subprotocol": "homeassistant", "op": ["observeproperty"]},
            ],
        })
        if entity.unit:
            prop["unit"] = entity.unit
        properties[key] = prop
        for name, spec in entity.commands.items():
            action: dict[str, Any] = {
                "title": f"{entity.name}: {name}",
                "forms": [{
                    "href": f"/api/services/{entity.domain}/{name}",
                    "op": ["invokeaction"],
                    "contentType": "application/json",
                    "htv:methodName": "POST",
                }],
            }
            arg_props = {arg: value.json_schema() for arg, value in spec.args.items()}
            arg_props["entity_id"] = {"type": "string", "const": entity.entity_id}
            action["input"] = {
                "type": "object",
                "properties": arg_props,
                "required": ["entity_id", *sorted(a for a, v in spec.args.items() if v.required)],
            }
            actions[f"{key}__{name}"] = action
    td: dict[str, Any] = {
        "@context": [TD_CONTEXT, {"htv": "http://www.w3.org/2011/http#"}],
        "@type": "Thing",
        "id": f"urn:qilu-hub:device:{device.id}",
        "title": device.display_name,
        "base": base_url,
        "securityDefinitions": {"bearer_sc": {"scheme": "bearer", "in": "header", "name": "Authorization"}},
        "security": ["bearer_sc"],
        "properties": properties,
        "actions": actions,
    }
    description = " ".join(x for x in (device.manufacturer, device.model) if x)
    if description:
        td["description"] = description
    if device.sw_version:
        td["version"] = {"instance": device.sw_version}
    return td
