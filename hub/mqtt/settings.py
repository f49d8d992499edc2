"""The ``mqtt`` configuration section and its typed view."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..config import f, register_section

SECTION = "mqtt"

SCHEMA = {
    "enabled": f(bool, default=False, help="Connect to an MQTT broker"),
    "host": f(str, default="127.0.0.1"),
    "port": f(int, default=1883, minimum=1),
    "username": f(str, type(None)),
    "password": f(str, type(None)),
    "tls": f(bool, default=False, help="Use TLS to the broker"),
    "ca_file": f(str, type(None), help="CA bundle that signed the broker's certificate"),
    "client_cert": f(str, type(None), help="Client certificate (PEM) for brokers that require one"),
    "client_key": f(str, type(None)),
    "client_id": f(str, type(None), help="Fixed MQTT client id (default: qilu-<hub_id>)"),
    "keepalive": f(int, default=30, minimum=5),
    "discovery_prefix": f(str, default="homeassistant"),
    "base_topic": f(str, default="qilu"),
    "hub_id": f(str, type(None), help="This hub's id on the broker (default: generated once and kept)"),
    "export": f(bool, default=True, help="Publish this hub's entities in Home Assistant discovery format"),
    "import": f(bool, default=True, help="Adopt devices that others (zigbee2mqtt, ESPHome, Tasmota) announce"),
    "federation": f(bool, default=True, help="Show other qilu hubs' devices on this broker"),
    "zigbee2mqtt": {
        "enabled": f(bool, default=True, help="Read zigbee2mqtt's own topics (bridge/devices) and adopt its devices"),
        "base_topic": f(str, default="zigbee2mqtt", help="zigbee2mqtt's mqtt.base_topic"),
    },
    "reconnect_min": f(float, int, default=0.5, minimum=0.01),
    "reconnect_max": f(float, int, default=30.0, minimum=0.01),
}

register_section(SECTION, SCHEMA)  # type: ignore[arg-type]

# Topic levels may not hold wildcards or separators; HA's node_id/object_id allow [a-zA-Z0-9_-].
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # reprs reach tracebacks and debug logs
    tls: bool = False
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    client_id: str | None = None
    keepalive: int = 30
    discovery_prefix: str = "homeassistant"
    base_topic: str = "qilu"
    hub_id: str | None = None
    export: bool = True
    import_: bool = True
    federation: bool = True
    zigbee2mqtt: bool = True  # native zigbee2mqtt support (needs import too)
    zigbee2mqtt_base_topic: str = "zigbee2mqtt"
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0

    @classmethod
    def from_config(cls, section: dict[str, Any] | None) -> MqttSettings:
        data = dict(section or {})
        data.pop("enabled", None)
        if "import" in data:
            data["import_"] = data.pop("import")
        z2m = data.pop("zigbee2mqtt", None)
        if isinstance(z2m, dict):
            unknown_z2m = sorted(set(z2m) - {"enabled", "base_topic"})
            if unknown_z2m:
                raise ValueError(f"unknown mqtt.zigbee2mqtt option(s): {', '.join(unknown_z2m)}")
            data["zigbee2mqtt"] = bool(z2m.get("enabled", True))
            data["zigbee2mqtt_base_topic"] = z2m.get("base_topic", "zigbee2mqtt")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown mqtt option(s): {', '.join(unknown)}")
        settings = cls(**data)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.hub_id is not None and not _ID_RE.match(self.hub_id):
            raise ValueError(f"mqtt.hub_id {self.hub_id!r} may only hold letters, digits, '_' and '-'")
        for name in ("discovery_prefix", "base_topic", "zigbee2mqtt_base_topic"):
            value = getattr(self, name)
            if not value or any(ch in value for ch in "+#") or value.startswith("/") or value.endswith("/"):
                label = "zigbee2mqtt.base_topic" if name == "zigbee2mqtt_base_topic" else name
                raise ValueError(f"mqtt.{label} {value!r} must be a topic without wildcards or outer slashes")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("mqtt.client_cert and mqtt.client_key go together")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("mqtt.reconnect_max must be at least reconnect_min")


def valid_id(value: str) -> bool:
    return bool(_ID_RE.match(value))
