"""BLE conformance kit benchmark: a whole ``firmware-test --ble`` run against the reference smart lock on a
mock BlueZ (bleak's real BlueZ backend, private D-Bus); prints one JSON object.

* ``run_s``: the kit's ``run()`` from scanning to the final disconnect, all ten checks passing.
* ``check_s``: each check's own time (medians).

Medians over ``--runs`` fresh mocks. The mock's D-Bus round trips stand in for the radio, so this is the
kit's own cost; on a real link add air time (a 128-frame oversize probe at a 23-byte MTU is ~128
connection events). Run: ``python bench/firmware_ble.py [--runs 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qilu_hub.drivers.qoap.ble_simulator import QoapBleSimulator  # noqa: E402
from qilu_hub.firmware_tests.ble import BleConformanceKit  # noqa: E402
from tests.testbeds.bluez import MockBluez, can_run  # noqa: E402

ADDRESS = "C0:0B:00:00:00:02"


async def one_run() -> tuple[float, dict[str, float]]:
    """The run's seconds and each check's."""
    mock = MockBluez().start()
    try:
        await mock.add_adapter("hci0")
        sim = QoapBleSimulator(ADDRESS, advert_interval=0.2)
        await sim.start()
        try:
            t0 = time.perf_counter()
            report = await BleConformanceKit(ADDRESS, bound=2.0).run()
            run_s = time.perf_counter() - t0
        finally:
            await sim.stop()
        if not report.ok:
            raise RuntimeError(report.text())
        return run_s, {r.id: r.seconds for r in report.results}
    finally:
        mock.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    reason = can_run()
    if reason:
        print(json.dumps({"error": reason}))
        return
    runs = [asyncio.run(one_run()) for _ in range(args.runs)]
    print(json.dumps({
        "runs": args.runs,
        "run_s": round(statistics.median(run_s for run_s, _ in runs), 4),
        "check_s": {name: round(statistics.median(checks[name] for _, checks in runs), 4) for name in runs[0][1]},
        "all_run_s": [round(run_s, 4) for run_s, _ in runs],
    }, indent=2))


if __name__ == "__main__":
    main()
