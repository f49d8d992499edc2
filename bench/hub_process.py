"""A standard hub (recorder on) with the API, for measuring start-up time and memory from outside.

    python bench/hub_process.py CONFIG_DIR

Prints ``READY <url>`` once the API listens, then adds 1,000 entities' states and
prints ``STATES <token>``; then runs until killed. Kept free of anything the hub
does not import itself, so that its start-up time is the hub's.
"""

import sys
import time

_T0 = time.perf_counter()

import asyncio  # noqa: E402

from qilu_hub import Hub, Scopes  # noqa: E402
from qilu_hub.api import ApiServer  # noqa: E402

ENTITIES = 1000


async def main(config_dir: str) -> None:
    hub = Hub(config_dir)
    api = ApiServer("127.0.0.1", 0)
    hub.add_component(api)
    await hub.async_start()
    print(f"READY {api.url} {time.perf_counter() - _T0:.4f}", flush=True)
    _, token = hub.tokens.create("bench", Scopes(admin=True))
    for i in range(ENTITIES):
        hub.states.async_set(f"sensor.meter_{i}", float(i), {"unit_of_measurement": "W", "friendly_name": f"Meter {i}"})
    print(f"STATES {token}", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
