"""One simulated QOAP appliance as a process on a host of an emulated LAN (for network-namespace tests).

    python -m tests.discovery.qoap_host BIND KIND --device-id ID [--instance NAME] [--seed TEXT] [--variant V]

serves and advertises on BIND, prints ``ready PORT``, then answers commands on stdin, one JSON line each:
``state`` (every entity's state), ``counts`` (HTTP requests served, commands executed); ``quit`` (or end of
input) sends the mDNS goodbye and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from qilu_hub.drivers.qoap.simulator import VARIANTS, QoapSimulator
from qilu_hub.sdk.testing import MdnsAdvertiser


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bind")
    parser.add_argument("kind")
    parser.add_argument("--device-id", required=True)
    parser.add_argument("--instance")
    parser.add_argument("--seed")
    parser.add_argument("--variant", default="ok", choices=VARIANTS)
    args = parser.parse_args(argv)
    advertiser = MdnsAdvertiser(args.bind)
    sim = QoapSimulator(args.kind, args.bind, advertiser=advertiser, device_id=args.device_id,
                        instance=args.instance, seed=args.seed, variant=args.variant)
    await sim.start()
    print(f"ready {sim.port}", flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line in ("", "quit"):
                break
            if line == "state":
                reply = {k: e.state for k, e in sim.appliance.entities.items()}
            elif line == "counts":
                reply = {"requests": sim.requests, "commands": sim.commands}
            else:
                reply = {"error": f"unknown command {line!r}"}
            print(json.dumps(reply), flush=True)
    finally:
        await sim.stop()
        await advertiser.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
