"""MQTT: Home Assistant discovery out, zigbee2mqtt/ESPHome/Tasmota devices in, and hub federation.

Importing this package registers the ``mqtt`` configuration section.
"""

from .bridge import BridgeStats, MqttBridge
from .export import ExportTopics, discovery_config, state_document
from .importer import DiscoveryError, ImportSpec, parse_discovery
from .settings import MqttSettings
from .template import Template, TemplateError, compile_template

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
