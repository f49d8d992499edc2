"""The ``qilu-hub`` command line.

Each module in this package that defines ``register(subparsers)`` adds its own
subcommands, so a new part of the hub brings its commands without editing this file.
Handlers are set with ``set_defaults(func=handler)`` and return the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import ConfigError, default_config_dir
from ..const import __version__

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qilu-hub",
        description="qilu-hub: smart-home and VR interop hub",
    )
    parser.add_argument("--version", action="version", version=f"qilu-hub {__version__}")
    parser.add_argument("--config", type=Path, default=None, metavar="DIR",
                        help=f"configuration directory (default: {default_config_dir()})")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def config_dir(args: argparse.Namespace) -> Path:
    return Path(args.config) if args.config is not None else default_config_dir()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_CONFIG
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"qilu-hub: configuration error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
