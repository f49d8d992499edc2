"""Run by test_crash_safety: a hub under heavy registry and state writes, printing what was committed."""

import asyncio
import sys

from hub import Hub


async def main(config_dir: str) -> None:
    hub = Hub(config_dir, {"recorder": {"commit_interval": 0.05}})
    await hub.async_start()
    n = len(hub.devices)
    while True:
        device = hub.devices.async_get_or_create(source="crash", name=f"D{n}", identifiers=[("crash", str(n))])
        entity = hub.entities.async_get_or_create(unique_id=f"crash:{n}", capabilities=("power",), name=f"P{n}",
                                                  device_id=device.id)
        # Printed only after the registry commit returned: these must survive a SIGKILL.
        sys.stdout.write(f"ACK {device.id} {entity.entity_id}\n")
        sys.stdout.flush()
        for i in range(200):
            hub.states.async_set(entity.entity_id, i, {"i": i})
        await asyncio.sleep(0)
        n += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
