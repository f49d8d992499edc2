"""Virtual appliances: in-process devices for ``demo``, tutorials and tests of the core.

They go through the same registries, state machine and command router as any
driver's devices, with simple realistic behaviour (a plug draws power when on, a
motion sensor fires now and then, a thermostat drifts towards its target).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .appliances.adoption import adopt_device
from .context import Context
from .model import Entity

if TYPE_CHECKING:
    from .core import Hub


@dataclass(frozen=True, slots=True)
class VirtualEntity:
    key: str
    name: str
    capabilities: tuple[str, ...]
    initial: Any
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VirtualAppliance:
    serial: str
    name: str
    area: str
    model: str
    entities: tuple[VirtualEntity, ...]


DEFAULT_APPLIANCES: tuple[VirtualAppliance, ...] = (
    VirtualAppliance("VL-0001", "Ceiling Light", "Living Room", "Virtual Light", (
        VirtualEntity("light", "Ceiling Light", ("on_off", "level", "color_temperature"), "off",
                      {"brightness": 0, "color_temp_kelvin": 3000}),
    )),
    VirtualAppliance("VP-0002", "TV Plug", "Living Room", "Virtual Plug", (
        VirtualEntity("relay", "TV Plug", ("on_off",), "off"),
        VirtualEntity("power", "TV Plug Power", ("power",), 0.0),
    )),
    VirtualAppliance("VM-0003", "Kitchen Motion", "Kitchen", "Virtual Motion", (
        VirtualEntity("motion", "Kitchen Motion", ("motion",), "off"),
        VirtualEntity("battery", "Kitchen Motion Battery", ("battery",), 93.0),
    )),
    VirtualAppliance("VT-0004", "Bedroom Thermostat", "Bedroom", "Virtual Thermostat", (
        VirtualEntity("climate", "Bedroom Thermostat", ("thermostat",), "heat",
                      {"temperature": 21.0, "current_temperature": 19.5}),
    )),
)


class VirtualAppliances:
    """A component that registers virtual appliances and simulates them."""

    name = "virtual"

    def __init__(self, appliances: tuple[VirtualAppliance, ...] = DEFAULT_APPLIANCES, animate: bool = True) -> None:
        self.appliances = appliances
        self.animate = animate
        self._hub: Hub | None = None
        self._power_of: dict[str, str] = {}  # relay entity_id -> its power entity_id
        self._unregister: list[Any] = []

    async def async_start(self, hub: Hub) -> None:
        self._hub = hub
        context = Context("virtual")
        for appliance in self.appliances:
            area = hub.areas.async_get_or_create(appliance.area)
            device = adopt_device(  # the same door as every appliance: one device per identity
                hub, source="virtual", name=appliance.name, identifiers=[("virtual", appliance.serial)],
                connections=[("serial", appliance.serial)], manufacturer="qilu-hub", model=appliance.model,
                area_id=area.id, driver="virtual",
            )
            created: dict[str, Entity] = {}
            for spec in appliance.entities:
                entity = hub.entities.async_get_or_create(
                    unique_id=f"virtual:{appliance.serial}:{spec.key}", capabilities=spec.capabilities,
                    name=spec.name, device_id=device.id,
                )
                created[spec.key] = entity
                hub.states.async_set(entity.entity_id, spec.initial, dict(spec.attributes), context)
            if "relay" in created and "power" in created:
                self._power_of[created["relay"].entity_id] = created["power"].entity_id
            self._unregister.append(hub.commands.register_device(device.id, self._handle))
        if self.animate:
            hub.supervisor.spawn("virtual-animate", self._animate)

    async def async_stop(self) -> None:
        for unregister in self._unregister:
            unregister()

    async def _handle(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        assert self._hub is not None
        states = self._hub.states
        current = states.get(entity.entity_id)
        attrs = dict(current.attributes) if current else {}
        value = current.value if current else None
        if command in ("turn_on", "turn_off", "toggle"):
            on = command == "turn_on" or (command == "toggle" and value != "on")
            if entity.domain == "climate":
                value = "heat" if on else "off"
            else:
                value = "on" if on else "off"
            if "brightness" in attrs or "brightness" in args or "brightness_pct" in args:
                if "brightness_pct" in args:
                    args["brightness"] = round(args.pop("brightness_pct") * 2.55)
                attrs["brightness"] = args.get("brightness", attrs.get("brightness") or 255) if on else 0
            if "color_temp_kelvin" in args:
                attrs["color_temp_kelvin"] = args["color_temp_kelvin"]
            power_id = self._power_of.get(entity.entity_id)
            if power_id:
                states.async_set(power_id, round(random.uniform(80, 120), 1) if on else 0.4, None, context)
        elif command == "set_temperature":
            attrs["temperature"] = args["temperature"]
        elif command == "set_hvac_mode":
            value = args["hvac_mode"]
        states.async_set(entity.entity_id, value, attrs, context)

    async def _animate(self) -> None:
        assert self._hub is not None
        hub = self._hub
        context = Context("virtual")
        while True:
            await asyncio.sleep(2.0)
            for state in hub.states.all():
                entity = hub.entities.get(state.entity_id)
                if entity is None or not entity.unique_id.startswith("virtual:"):
                    continue
                if entity.device_class == "motion":
                    hub.states.async_set(state.entity_id, "on" if random.random() < 0.3 else "off", None, context)
                elif entity.domain == "climate":
                    attrs = dict(state.attributes)
                    target = attrs.get("temperature", 21.0)
                    now = attrs.get("current_temperature", 20.0)
                    attrs["current_temperature"] = round(now + (target - now) * 0.1 + random.uniform(-0.05, 0.05), 2)
                    hub.states.async_set(state.entity_id, state.value, attrs, context)
