"""``qilu-hub firmware-test``: run the QOAP conformance kit against a device or simulator, over IP or BLE."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path
from typing import Any

_BLE_ADDRESS = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
EXIT_FAIL = 1
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("firmware-test", help="check an appliance against the open appliance profile")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--host", help="an IP appliance's IPv4 address")
    target.add_argument("--ble", metavar="ADDRESS", help="a BLE appliance's Bluetooth address (AA:BB:CC:DD:EE:FF)")
    target.add_argument("--matter", metavar="CODE", help="a Matter appliance's setup code (MT:... or manual)")
    parser.add_argument("--matter-url", default=None, help="Matter: a matter-server to use (ws://HOST:5580/ws)")
    parser.add_argument("--matter-venv", type=Path, default=None,
                        help="Matter: start a throw-away matter-server from this venv (matter server install)")
    parser.add_argument("--restart-command", default=None,
                        help="Matter: a shell command that restarts (power-cycles) the appliance, for the checks "
                             "that its state and subscriptions survive a restart (skipped without it)")
    parser.add_argument("--reference", action="append", default=None, metavar="QUANTITY[@ENDPOINT]=VALUE[±TOL]",
                        help="Matter: what a measured quantity is while the kit runs, in °C, %%, lx, kPa, m³/h, W, "
                             "kWh (e.g. temperature=21.5±1.5, humidity@2=45±10; repeat for more): the reading, "
                             "decoded in the specification's unit, must match it")
    parser.add_argument("--primary-interface", default=None, help="Matter: the LAN interface the server uses")
    parser.add_argument("--paa-root-cert-dir", type=Path, default=None, help="Matter: attestation roots (offline)")
    parser.add_argument("--adapter", default=None, help="BLE only: the BlueZ adapter to use (default hci0)")
    parser.add_argument("--scan-timeout", type=float, default=None,
                        help="BLE only: seconds to wait for the appliance's advertisement (default 10)")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: from its mDNS advertisement)")
    parser.add_argument("--profile", default="qoap", help="qoap (the current 1.1, the default), qoap-1.1 or qoap-1.0")
    parser.add_argument("--bound", type=float, default=2.0, help="seconds allowed for a notification (default 2)")
    parser.add_argument("--mdns-timeout", type=float, default=10.0, help="seconds to wait for the advertisement")
    parser.add_argument("--junit", type=Path, default=None, metavar="FILE", help="write JUnit XML here")
    parser.add_argument("--report", type=Path, default=None, metavar="FILE.html", help="write an HTML report here")
    parser.set_defaults(func=cmd_firmware_test)


def cmd_firmware_test(args: argparse.Namespace) -> int:
    from qilu_hub.firmware_tests.checks import KitBase
    from qilu_hub.firmware_tests.kit import ConformanceKit
    from qilu_hub.firmware_tests.results import CheckResult

    def progress(done: int, total: int, result: CheckResult) -> None:
        print(f"[{done}/{total}] {result.status.upper():4} {result.id}: {result.message}", file=sys.stderr, flush=True)

    if args.matter is not None:
        return _matter(args, progress)
    kit: KitBase
    try:
        if args.reference:
            raise ValueError("--reference applies to --matter only")
        if args.ble is not None:
            if args.port is not None:
                raise ValueError("--port applies to --host only")
            if not _BLE_ADDRESS.match(args.ble):
                raise ValueError(f"--ble {args.ble!r} is not a Bluetooth address like AA:BB:CC:DD:EE:FF")
            from qilu_hub.firmware_tests.ble import BleConformanceKit

            kit = BleConformanceKit(args.ble, adapter=args.adapter or "hci0", profile_name=args.profile,
                                    bound=args.bound, scan_timeout=args.scan_timeout or 10.0, progress=progress)
            what = f"BLE appliance {args.ble.upper()} via {args.adapter or 'hci0'}"
        else:
            if args.adapter is not None or args.scan_timeout is not None:
                raise ValueError("--adapter and --scan-timeout apply to --ble only")
            kit = ConformanceKit(args.host, args.port, profile_name=args.profile, bound=args.bound,
                                 mdns_timeout=args.mdns_timeout, progress=progress)
            what = f"{args.host}{f':{args.port}' if args.port else ''}"
    except ValueError as err:
        print(f"qilu-hub firmware-test: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Checking {what} against profile {args.profile} ...", file=sys.stderr, flush=True)
    report = asyncio.run(kit.run())
    print(report.text())
    if args.junit is not None:
        args.junit.write_text(report.junit_xml(), encoding="utf-8")
    if args.report is not None:
        args.report.write_text(report.html(), encoding="utf-8")
    return 0 if report.ok else EXIT_FAIL


def _matter(args: argparse.Namespace, progress: Any) -> int:
    from qilu_hub.firmware_tests.matter import MatterConformanceKit
    from qilu_hub.firmware_tests.matter_units import BadReference, parse_references

    if args.matter_url is None and args.matter_venv is None:
        print("qilu-hub firmware-test: --matter needs --matter-url or --matter-venv", file=sys.stderr)
        return EXIT_USAGE
    try:
        references = parse_references(args.reference)
    except BadReference as err:  # before anything is commissioned
        print(f"qilu-hub firmware-test: {err}", file=sys.stderr)
        return EXIT_USAGE
    kit = MatterConformanceKit(args.matter, url=args.matter_url, venv=args.matter_venv,
                               primary_interface=args.primary_interface, paa_root_cert_dir=args.paa_root_cert_dir,
                               bound=args.bound, progress=progress,
                               restart=_shell_restart(args.restart_command) if args.restart_command else None,
                               references=references)
    print("Checking the Matter appliance ...", file=sys.stderr, flush=True)
    report = asyncio.run(kit.run())
    print(report.text())
    if args.junit is not None:
        args.junit.write_text(report.junit_xml(), encoding="utf-8")
    if args.report is not None:
        args.report.write_text(report.html(), encoding="utf-8")
    return 0 if report.ok else EXIT_FAIL


def _shell_restart(command: str) -> Any:
    async def restart() -> None:
        process = await asyncio.create_subprocess_shell(command)
        if await process.wait() != 0:
            raise RuntimeError(f"the restart command exited with {process.returncode}")

    return restart
