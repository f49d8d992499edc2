"""Command routing: validate against the capability catalogue, then hand to the entity's driver.

Drivers register one handler per device (or per entity). A handler that raises or
hangs is contained: the call is time-limited and the caller gets a clear error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .bus import EventBus, EventType
from .capabilities import CommandError, validate_command
from .context import Context
from .model import Entity
from .registry import EntityRegistry

_LOGGER = logging.getLogger(__name__)

CommandHandler = Callable[[Entity, str, dict[str, Any], Context], Awaitable[None]]

EVENT_CALL_SERVICE: EventType[dict[str, Any]] = EventType("call_service")

DEFAULT_TIMEOUT = 10.0


class CommandRouter:
    def __init__(self, entities: EntityRegistry, bus: EventBus, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._entities = entities
        self._bus = bus
        self._by_device: dict[str, CommandHandler] = {}
        self._by_entity: dict[str, CommandHandler] = {}
        self.timeout = timeout

    def register_device(self, device_id: str, handler: CommandHandler) -> Callable[[], None]:
        self._by_device[device_id] = handler
        return lambda: self._by_device.pop(device_id, None) and None

    def register_entity(self, entity_id: str, handler: CommandHandler) -> Callable[[], None]:
        self._by_entity[entity_id] = handler
        return lambda: self._by_entity.pop(entity_id, None) and None

    def handler_for(self, entity: Entity) -> CommandHandler | None:
        handler = self._by_entity.get(entity.entity_id)
        if handler is None and entity.device_id is not None:
            handler = self._by_device.get(entity.device_id)
        return handler

    def validate(self, entity_id: str, command: str, args: Mapping[str, Any] | None) -> tuple[Entity, dict[str, Any]]:
        entity = self._entities.get(entity_id)
        if entity is None:
            raise CommandError("not_found", f"entity {entity_id!r} does not exist")
        return entity, validate_command(entity.commands, command, args)

    async def async_call(
        self,
        entity_id: str,
        command: str,
        args: Mapping[str, Any] | None = None,
        context: Context | None = None,
    ) -> None:
        """Validate and execute a command; raises CommandError with a stable code on any failure."""
        entity, clean = self.validate(entity_id, command, args)
        if entity.disabled:
            raise CommandError("not_allowed", f"{entity_id} is disabled")
        handler = self.handler_for(entity)
        if handler is None:
            raise CommandError("unavailable", f"{entity_id} has no driver loaded (device offline?)")
        context = context or Context("api")
        self._bus.fire(
            EVENT_CALL_SERVICE,
            {"domain": entity.domain, "service": command, "service_data": {"entity_id": entity_id, **clean}},
            context,
        )
        try:
            await asyncio.wait_for(handler(entity, command, clean, context), self.timeout)
        except CommandError:
            raise
        except TimeoutError:
            raise CommandError("timeout", f"{entity_id} did not answer {command} within {self.timeout:g} s") from None
        except Exception as err:
            _LOGGER.warning("Driver failed on %s.%s: %r", entity_id, command, err)
            raise CommandError("driver_error", f"{entity_id}: {type(err).__name__}: {err}") from err
