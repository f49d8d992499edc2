"""``qilu-hub drivers``: the installed drivers, where each comes from, its quality level, and whether the
protocol library it needs is installed.

Reads manifests only (data, see docs/architecture.md "What an appliance maker may import"): no driver module
and no protocol library is imported unless ``--import`` asks for it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import re
from typing import Any

from qilu_hub.sdk import Manifest


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("drivers", help="list installed drivers: origin, quality, protocol library")
    parser.add_argument("--import", dest="import_drivers", action="store_true",
                        help="also import each driver module (and its protocol library) to prove it loads")
    parser.set_defaults(func=cmd_drivers)


def _requirement_state(requirements: tuple[str, ...]) -> str:
    """``installed`` when every required distribution is installed (the version is pip's business), else which
    are missing; no module is imported to find out."""
    missing = []
    for requirement in requirements:
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        return f"missing: pip install {' '.join(missing)}"
    return "installed" if requirements else "none needed"


def _import_state(manifest: Manifest) -> str:
    module = manifest.driver.partition(":")[0]
    if not module:
        return "loaded"
    try:
        importlib.import_module(module)
    except Exception as err:  # a broken driver is reported, as the hub reports it, and the listing goes on
        return f"import fails: {type(err).__name__}: {err}"
    return "imports"


def cmd_drivers(args: argparse.Namespace) -> int:
    from qilu_hub.drivers.manager import DriverManager

    manager = DriverManager()  # built-in manifests and the qilu_hub.drivers entry points, loaded as the hub does
    print(f"{'DRIVER':<12}{'VERSION':<10}{'QUALITY':<10}{'ORIGIN':<14}{'LIBRARY':<28}TITLE")
    for name, driver in sorted(manager.drivers.items()):
        manifest = driver.manifest
        origin = "built-in" if manifest.driver.startswith("qilu_hub.drivers.") else "entry point"
        library = _requirement_state(manifest.requirements)
        if args.import_drivers:
            library = f"{library}; {_import_state(manifest)}"
        print(f"{name[:11]:<12}{manifest.version[:9]:<10}{manifest.quality:<10}{origin:<14}{library:<28}"
              f"{manifest.title}")
    for origin, error in sorted(manager.load_errors.items()):
        print(f"{origin}: not loaded: {error}")
    return 1 if manager.load_errors else 0
