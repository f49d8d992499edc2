"""``qilu-hub simulate KIND``: run protocol-true appliance simulators until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from qilu_hub.discovery.models import BleInfo


def register(subparsers: argparse._SubParsersAction) -> None:
    from qilu_hub.drivers.kinds import KINDS  # data only: the fleet itself loads when a simulation starts

    parser = subparsers.add_parser("simulate", help="run simulated appliances (Shelly, WLED, QOAP, BTHome, Xiaomi)")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--bind", default="127.0.0.1", help="address to serve and advertise on (default loopback)")
    from qilu_hub.drivers.qoap.variants import VARIANTS

    parser.add_argument("--variant", default="ok", choices=VARIANTS,
                        help="QOAP appliances only: a deliberately broken (or older) firmware for the conformance kit")
    parser.add_argument("--seed", default=None,
                        help="derive serial numbers and identity keys from this text (default: random per run, so "
                             "two runs on one LAN never announce the same appliance)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    parser.set_defaults(func=cmd_simulate)


async def _simulate(args: argparse.Namespace) -> None:
    from qilu_hub.drivers.fleet import Fleet

    fleet = Fleet(args.bind, seed=args.seed)
    sims = await fleet.add(args.kind, args.count, variant=args.variant)
    for sim in sims:
        print(f"{args.kind}: {getattr(sim, 'device_id', getattr(sim, 'mac', '?'))} on {sim.host}:{sim.port}",
              flush=True)

    def emit(info: BleInfo) -> None:
        print(json.dumps({"address": info.address, "name": info.name, "rssi": info.rssi,
                          "service_data": {k: v.hex() for k, v in info.service_data.items()}}), flush=True)

    if fleet.ble:
        fleet.run_ble(emit)
    try:
        if args.seconds is not None:
            await asyncio.sleep(args.seconds)
        else:
            await asyncio.Event().wait()
    finally:
        await fleet.stop()


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.count < 1:
        print("qilu-hub simulate: --count must be at least 1", file=sys.stderr)
        return 2
    try:
        asyncio.run(_simulate(args))
    except (OSError, ValueError) as err:
        print(f"qilu-hub simulate: {err}", file=sys.stderr)
        return 1
    return 0
