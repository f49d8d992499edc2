"""The common device model: areas, devices and entities, as plain dataclasses.

Every appliance, whatever protocol it speaks, is described with these types. They
serialise to JSON for storage and the API with ``to_dict`` / ``from_dict``.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

from . import capabilities as caps

_MAC_HEX = re.compile(r"^[0-9a-f]{12}$")


def normalize_connection(kind: str, value: str) -> str:
    """Canonical form of a connection value, so MACs from mDNS, BLE and MQTT compare equal."""
    value = value.strip()
    if kind in ("mac", "ble"):
        hexdigits = re.sub(r"[^0-9a-fA-F]", "", value).lower()
        if _MAC_HEX.match(hexdigits):
            return ":".join(hexdigits[i : i + 2] for i in range(0, 12, 2))
        return value.lower()
    if kind == "serial":
        return value.upper()
    return value


def slugify(text: str) -> str:
    """ASCII, lowercase, underscores: ``"Kitchen Ceiling"`` → ``kitchen_ceiling``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    return slug or "unnamed"


@dataclass(slots=True)
class Pose:
    """Position (metres) and orientation (unit quaternion) in the home's frame, for XR placement."""

    x: float
    y: float
    z: float
    qx: float = 0.0
    qy: float = 0.0
    qz: float = 0.0
    qw: float = 1.0
    frame: str = "home"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pose:
        return cls(**data)


@dataclass(slots=True)
class Area:
    id: str
    name: str
    floor: str | None = None
    pose: Pose | None = None
    icon: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "floor": self.floor,
                "pose": self.pose.to_dict() if self.pose else None, "icon": self.icon}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Area:
        pose = data.get("pose")
        return cls(data["id"], data["name"], data.get("floor"), Pose.from_dict(pose) if pose else None,
                   data.get("icon"))


@dataclass(slots=True)
class Provenance:
    """Who reported an identifier or connection, and when first and last."""

    source: str
    first_seen: float
    last_seen: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Device:
    """One physical appliance, however many protocols it is seen through."""

    id: str
    name: str
    manufacturer: str | None = None
    model: str | None = None
    hw_version: str | None = None
    sw_version: str | None = None
    # (namespace, value) → provenance; namespace is the protocol or driver, e.g. ("shelly", "shellyplus1-a8032ab12345")
    identifiers: dict[tuple[str, str], Provenance] = field(default_factory=dict)
    # (kind, value) → provenance; kind is mac, ble, ip, serial ...
    connections: dict[tuple[str, str], Provenance] = field(default_factory=dict)
    area_id: str | None = None
    pose: Pose | None = None
    via_device_id: str | None = None
    driver: str | None = None
    name_by_user: str | None = None
    created: float = field(default_factory=time.time)
    merged_from: list[str] = field(default_factory=list)
    disabled_by: str | None = None  # "user" when the household switched it off (its entities follow)

    @property
    def display_name(self) -> str:
        return self.name_by_user or self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "name_by_user": self.name_by_user,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "hw_version": self.hw_version,
            "sw_version": self.sw_version,
            "identifiers": [[ns, val, prov.to_dict()] for (ns, val), prov in self.identifiers.items()],
            "connections": [[kind, val, prov.to_dict()] for (kind, val), prov in self.connections.items()],
            "area_id": self.area_id,
            "pose": self.pose.to_dict() if self.pose else None,
            "via_device_id": self.via_device_id,
            "driver": self.driver,
            "created": self.created,
            "merged_from": list(self.merged_from),
            "disabled_by": self.disabled_by,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Device:
        pose = data.get("pose")
        return cls(
            id=data["id"],
            name=data["name"],
            name_by_user=data.get("name_by_user"),
            manufacturer=data.get("manufacturer"),
            model=data.get("model"),
            hw_version=data.get("hw_version"),
            sw_version=data.get("sw_version"),
            identifiers={(ns, val): Provenance(**prov) for ns, val, prov in data.get("identifiers", [])},
            connections={(kind, val): Provenance(**prov) for kind, val, prov in data.get("connections", [])},
            area_id=data.get("area_id"),
            pose=Pose.from_dict(pose) if pose else None,
            via_device_id=data.get("via_device_id"),
            driver=data.get("driver"),
            created=data.get("created", time.time()),
            merged_from=list(data.get("merged_from", [])),
            disabled_by=data.get("disabled_by"),
        )


@dataclass(slots=True)
class Entity:
    """One controllable or readable facet of a device, with Home Assistant-style ``entity_id``."""

    entity_id: str
    unique_id: str
    device_id: str | None
    capabilities: tuple[str, ...]
    name: str
    domain: str = ""
    device_class: str | None = None
    area_id: str | None = None
    unit: str | None = None
    # Why it is switched off: None (on), "user" (by the household), "device" (its device is switched off).
    disabled_by: str | None = None
    entity_category: str | None = None
    name_by_user: str | None = None  # the household's name for it, over the driver's ``name``
    icon: str | None = None  # the household's icon (``mdi:...``), over the capability's
    commands: dict[str, caps.CommandSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in self.capabilities:
            caps.get(name)  # unknown capability: fail at registration, not at first command
        if not self.domain:
            self.domain = caps.domain_for(self.capabilities)
        if self.device_class is None:
            primary = caps.get(self.capabilities[0])
            self.device_class = primary.device_class
            if self.unit is None:
                self.unit = primary.state.unit
        self.commands = caps.merged_commands(self.capabilities)

    @property
    def disabled(self) -> bool:
        return self.disabled_by is not None

    @disabled.setter
    def disabled(self, value: bool) -> None:  # the flag of old; registry edits set disabled_by with its reason
        self.disabled_by = "user" if value else None

    @property
    def display_name(self) -> str:
        return self.name_by_user or self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "unique_id": self.unique_id,
            "device_id": self.device_id,
            "capabilities": list(self.capabilities),
            "name": self.name,
            "domain": self.domain,
            "device_class": self.device_class,
            "area_id": self.area_id,
            "unit": self.unit,
            "disabled_by": self.disabled_by,
            "entity_category": self.entity_category,
            "name_by_user": self.name_by_user,
            "icon": self.icon,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entity:
        return cls(
            entity_id=data["entity_id"],
            unique_id=data["unique_id"],
            device_id=data.get("device_id"),
            capabilities=tuple(data["capabilities"]),
            name=data["name"],
            domain=data.get("domain", ""),
            device_class=data.get("device_class"),
            area_id=data.get("area_id"),
            unit=data.get("unit"),
            # Stored before disabled_by existed: a bare flag, which only the household could set.
            disabled_by=data.get("disabled_by") or ("user" if data.get("disabled") else None),
            entity_category=data.get("entity_category"),
            name_by_user=data.get("name_by_user"),
            icon=data.get("icon"),
        )
