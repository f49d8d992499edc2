"""MQTT: Home Assistant discovery out, zigbee2mqtt/ESPHome/Tasmota devices in, and hub federation.

Importing this package registers the ``mqtt`` configuration section. Everything else loads when first named
(``from qilu_hub.mqtt import MqttBridge``): every hub validates its configuration through this package, and
the bridge's imports (aiomqtt, paho, jinja2; ~7 MiB) belong only in hubs with ``mqtt.enabled``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .settings import MqttSettings

if TYPE_CHECKING:
    from .bridge import BridgeStats, MqttBridge
    from .export import ExportTopics, discovery_config, state_document
    from .importer import DiscoveryError, ImportSpec, parse_discovery
    from .template import Template, TemplateError, compile_template

_MODULE_OF = {
    "BridgeStats": "bridge", "MqttBridge": "bridge",
    "ExportTopics": "export", "discovery_config": "export", "state_document": "export",
    "DiscoveryError": "importer", "ImportSpec": "importer", "parse_discovery": "importer",
    "Template": "template", "TemplateError": "template", "compile_template": "template",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once: later lookups find it like any module attribute
    return value


__all__ = [
    "BridgeStats",
    "DiscoveryError",
    "ExportTopics",
    "ImportSpec",
    "MqttBridge",
    "MqttSettings",
    "Template",
    "TemplateError",
    "compile_template",
    "discovery_config",
    "parse_discovery",
    "state_document",
]
