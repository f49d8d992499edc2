import asyncio
from typing import Any

import pytest

from qilu_hub import CommandError, Context, Entity, Hub
from qilu_hub.commands import EVENT_CALL_SERVICE


async def make_light(hub: Hub) -> Entity:
    device = hub.devices.async_get_or_create(source="test", name="Lamp", identifiers=[("test", "lamp")])
    return hub.entities.async_get_or_create(unique_id="test:lamp", capabilities=("on_off", "level"), name="Lamp",
                                            device_id=device.id)


async def test_valid_command_reaches_driver_with_clean_args(hub: Hub) -> None:
    entity = await make_light(hub)
    calls: list[tuple[str, dict[str, Any], str]] = []

    async def handler(e: Entity, command: str, args: dict[str, Any], ctx: Context) -> None:
        calls.append((command, args, ctx.origin))

    hub.commands.register_device(entity.device_id or "", handler)
    fired = []
    hub.bus.listen(EVENT_CALL_SERVICE, fired.append)
    await hub.commands.async_call(entity.entity_id, "turn_on", {"brightness": 10.0}, Context("api"))
    assert calls == [("turn_on", {"brightness": 10}, "api")]
    assert fired[0].data["service_data"] == {"entity_id": entity.entity_id, "brightness": 10}


async def test_invalid_command_never_reaches_driver(hub: Hub) -> None:
    entity = await make_light(hub)
    calls: list[str] = []

    async def handler(e: Entity, command: str, args: dict[str, Any], ctx: Context) -> None:
        calls.append(command)

    hub.commands.register_device(entity.device_id or "", handler)
    with pytest.raises(CommandError) as err:
        await hub.commands.async_call(entity.entity_id, "turn_on", {"brightness": -1})
    assert err.value.code == "out_of_range"
    with pytest.raises(CommandError) as err:
        await hub.commands.async_call("light.nope", "turn_on")
    assert err.value.code == "not_found"
    assert calls == []


async def test_hanging_and_failing_drivers_are_contained(hub: Hub) -> None:
    entity = await make_light(hub)
    hub.commands.timeout = 0.05

    async def hangs(e: Entity, command: str, args: dict[str, Any], ctx: Context) -> None:
        await asyncio.sleep(60)

    hub.commands.register_device(entity.device_id or "", hangs)
    with pytest.raises(CommandError) as err:
        await hub.commands.async_call(entity.entity_id, "toggle")
    assert err.value.code == "timeout"

    async def raises(e: Entity, command: str, args: dict[str, Any], ctx: Context) -> None:
        raise OSError("host unreachable")

    hub.commands.register_device(entity.device_id or "", raises)
    with pytest.raises(CommandError) as err:
        await hub.commands.async_call(entity.entity_id, "toggle")
    assert err.value.code == "driver_error" and "host unreachable" in err.value.message


async def test_no_driver_is_unavailable(hub: Hub) -> None:
    entity = await make_light(hub)
    with pytest.raises(CommandError) as err:
        await hub.commands.async_call(entity.entity_id, "toggle")
    assert err.value.code == "unavailable"
