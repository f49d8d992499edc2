"""`python -m qilu_hub.xr_bridge xr ...`: the same as `qilu-hub xr ...`, usable before/without the main CLI."""

from __future__ import annotations

import argparse
import sys

from . import cli as xr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m qilu_hub.xr_bridge")
    sub = ap.add_subparsers(required=True)
    xr.register(sub)
    args = ap.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
