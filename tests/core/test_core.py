import asyncio
from pathlib import Path

import pytest

from qilu_hub import EVENT_HUB_STARTED, Hub


class Recording:
    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name = name
        self.log = log
        self.fail = fail

    async def async_start(self, hub: Hub) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def async_stop(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_components_start_in_order_and_stop_in_reverse(tmp_path: Path) -> None:
    log: list[str] = []
    hub = Hub(tmp_path, {}, recorder=False)
    for name in ("storage-user", "api", "discovery"):
        hub.add_component(Recording(name, log))
    started = []
    hub.bus.listen(EVENT_HUB_STARTED, started.append)
    await hub.async_start()
    await hub.async_stop()
    assert log == ["start storage-user", "start api", "start discovery",
                   "stop discovery", "stop api", "stop storage-user"]
    assert len(started) == 1


async def test_failed_start_stops_what_already_started(tmp_path: Path) -> None:
    log: list[str] = []
    hub = Hub(tmp_path, {}, recorder=False)
    hub.add_component(Recording("a", log))
    hub.add_component(Recording("b", log, fail=True))
    hub.add_component(Recording("c", log))
    with pytest.raises(RuntimeError, match="b cannot start"):
        await hub.async_start()
    assert log == ["start a", "stop a"]


async def test_duplicate_component_name_rejected(tmp_path: Path) -> None:
    hub = Hub(tmp_path, {}, recorder=False)
    hub.add_component(Recording("a", []))
    with pytest.raises(ValueError):
        hub.add_component(Recording("a", []))
    hub.storage.close()


async def test_areas_from_config_are_created(tmp_path: Path) -> None:
    hub = Hub(tmp_path, {"areas": [{"name": "Children's Room"}]}, recorder=False)
    await hub.async_start()
    assert hub.areas.get("children_s_room") is not None
    await hub.async_stop()


async def test_area_pose_from_config_reaches_the_registry(tmp_path: Path) -> None:
    from qilu_hub.model import Pose

    area = {"name": "Living Room", "pose": {"x": 2.0, "y": 0.0, "z": -1.5}}
    hub = Hub(tmp_path, {"areas": [area]}, recorder=False)
    await hub.async_start()
    assert hub.areas.get("living_room").pose == Pose(2.0, 0.0, -1.5)  # type: ignore[union-attr]
    await hub.async_stop()
    # the file is the source: a changed pose replaces the stored one at the next start
    area["pose"] = {"x": 0.0, "y": 0.0, "z": 0.0, "qx": 0.0, "qy": 1.0, "qz": 0.0, "qw": 0.0}
    hub = Hub(tmp_path, {"areas": [area]}, recorder=False)
    await hub.async_start()
    assert hub.areas.get("living_room").pose == Pose(0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0)  # type: ignore[union-attr]
    await hub.async_stop()


async def test_request_stop_ends_run_until_stopped(tmp_path: Path) -> None:
    log: list[str] = []
    hub = Hub(tmp_path, {}, recorder=False)
    hub.add_component(Recording("x", log))
    asyncio.get_running_loop().call_later(0.05, hub.request_stop)
    await asyncio.wait_for(hub.run_until_stopped(), 5)
    assert log == ["start x", "stop x"]
