"""A hub with the API on a loopback port, in its own process, for tests that exhaust the process's resources.

    python tests/reliability/api_hub_child.py CONFIG_DIR '{"idle_timeout": 2}'

The JSON holds ``hub:`` options, set on the loaded configuration as the hub would read them. Prints
``READY <url> <admin token> <soft open-file limit>`` once the API listens, logs to stderr as the CLI
does, and runs until SIGTERM. SIGUSR1 takes every free file descriptor (a stand-in for drivers and
databases that used them all up); SIGUSR2 gives them back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import signal
import sys


async def main(config_dir: str, options: dict[str, object]) -> None:
    from qilu_hub import Hub, Scopes
    from qilu_hub.api import ApiServer
    from qilu_hub.config import load_config

    config = load_config(config_dir)
    config["hub"].update(options)
    hub = Hub(config_dir, config, recorder=False)
    api = ApiServer("127.0.0.1", 0)
    hub.add_component(api)
    await hub.async_start()
    _, token = hub.tokens.create("admin", Scopes(admin=True))
    hogged: list[int] = []

    def hog() -> None:
        try:
            while len(hogged) < 1 << 20:
                hogged.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        print(f"HOGGED {len(hogged)}", flush=True)

    def release() -> None:
        while hogged:
            os.close(hogged.pop())
        print("RELEASED", flush=True)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, hog)
    loop.add_signal_handler(signal.SIGUSR2, release)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print(f"READY {api.url} {token} {soft}", flush=True)  # after the handlers: the test signals at once
    await stop.wait()
    release()
    await hub.async_stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}))
