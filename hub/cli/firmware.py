"""``qilu-hub firmware-test``: run the QOAP conformance kit against a device or simulator."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

EXIT_FAIL = 1
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("firmware-test", help="check an appliance against the open appliance profile")
    parser.add_argument("--host", required=True, help="the appliance's IPv4 address")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: from its mDNS advertisement)")
    parser.add_argument("--profile", default="qoap", help="profile to check (default: qoap, i.e. 1.0)")
    parser.add_argument("--bound", type=float, default=2.0, help="seconds allowed for a notification (default 2)")
    parser.add_argument("--mdns-timeout", type=float, default=10.0, help="seconds to wait for the advertisement")
    parser.add_argument("--junit", type=Path, default=None, metavar="FILE", help="write JUnit XML here")
    parser.add_argument("--report", type=Path, default=None, metavar="FILE.html", help="write an HTML report here")
    parser.set_defaults(func=cmd_firmware_test)


def cmd_firmware_test(args: argparse.Namespace) -> int:
    from firmware_tests.kit import ConformanceKit
    from firmware_tests.results import CheckResult

    def progress(done: int, total: int, result: CheckResult) -> None:
        print(f"[{done}/{total}] {result.status.upper():4} {result.id}: {result.message}", file=sys.stderr, flush=True)

    try:
        kit = ConformanceKit(args.host, args.port, profile_name=args.profile, bound=args.bound,
                             mdns_timeout=args.mdns_timeout, progress=progress)
    except ValueError as err:
        print(f"qilu-hub firmware-test: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Checking {args.host}{f':{args.port}' if args.port else ''} against profile {args.profile} ...",
          file=sys.stderr, flush=True)
    report = asyncio.run(kit.run())
    print(report.text())
    if args.junit is not None:
        args.junit.write_text(report.junit_xml(), encoding="utf-8")
    if args.report is not None:
        args.report.write_text(report.html(), encoding="utf-8")
    return 0 if report.ok else EXIT_FAIL
