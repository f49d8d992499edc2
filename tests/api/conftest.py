"""A real hub with virtual appliances and the API on an ephemeral loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from qilu_hub import Hub, Scopes
from qilu_hub.api import ApiServer, LoginLimiter
from qilu_hub.config import load_config
from qilu_hub.virtual import VirtualAppliances

LIGHT = "light.living_room_ceiling_light"
PLUG = "switch.living_room_tv_plug"
THERMOSTAT = "climate.bedroom_thermostat"


@dataclass
class Env:
    hub: Hub
    api: ApiServer
    admin: str
    read_only: str
    kitchen: str

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/api/websocket"

    @property
    def stream_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/api/stream"


async def start_env(config_dir: Path, **api_kwargs: object) -> Env:
    config = load_config(config_dir)
    config["recorder"]["commit_interval"] = 0.05
    hub = Hub(config_dir, config)
    hub.add_component(VirtualAppliances(animate=False))
    api = ApiServer("127.0.0.1", 0, **api_kwargs)  # type: ignore[arg-type]
    hub.add_component(api)
    await hub.async_start()
    _, admin = hub.tokens.create("admin", Scopes(admin=True))
    _, read_only = hub.tokens.create("viewer", Scopes(read_only=True))
    _, kitchen = hub.tokens.create("kitchen headset", Scopes(areas=frozenset({"kitchen"})))
    return Env(hub, api, admin, read_only, kitchen)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    environment = await start_env(tmp_path, login_limiter=LoginLimiter(max_failures=1000))
    yield environment
    await environment.hub.async_stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
