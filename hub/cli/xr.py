"""``qilu-hub xr``: the OpenXR client's subcommand, which lives with the client in ``qilu_hub.xr_bridge.cli``.

Here so the CLI's auto-discovery finds it; ``python -m qilu_hub.xr_bridge xr`` reaches the same code without the hub's
CLI. ``pip install qilu-hub`` leaves the OpenXR bindings out (the ``xr`` extra): then the command says how to add
them instead of failing on an import.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from qilu_hub.xr_bridge.cli import handler as _bridge_handler
from qilu_hub.xr_bridge.cli import stream_url

from . import CliError

# The modules the xr extra (pyproject.toml [project.optional-dependencies] xr) installs.
EXTRA_MODULES = ("xr",)
EXIT_NO_EXTRA = 2


def register(subparsers: Any) -> None:
    from qilu_hub.xr_bridge.cli import register as register_bridge

    register_bridge(subparsers)
    subparsers.choices["xr"].set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    for module in EXTRA_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise CliError(f"xr needs the OpenXR bindings, which this install lacks ({err}); "
                           "install them with: pip install 'qilu-hub[xr]'", EXIT_NO_EXTRA) from None
    return _bridge_handler(args)


__all__ = ["handler", "register", "stream_url"]
