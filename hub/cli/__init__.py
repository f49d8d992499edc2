"""The ``qilu-hub`` command line.

Each module in this package that defines ``register(subparsers)`` adds its own
subcommands, so a new part of the hub brings its commands without editing this file.
Handlers are set with ``set_defaults(func=handler)`` and return the exit code.

Global options (``--config``, ``-v``) are accepted anywhere on the command line: they are copied onto every
subcommand's parser with a suppressed default, so a value given after the subcommand wins and one given before it
is not overwritten by the subcommand's default. A user error is one line on stderr and an exit code, never a
traceback; an unexpected error shows its traceback only with ``-v``.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import logging
import pkgutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..config import ConfigError, default_config_dir
from ..const import __version__
from ..tokens import DEPRECATED_TOKEN_ENV, TOKEN_ENV, token_from_environment

EXIT_CONFIG = 2
EXIT_USER = 1
EXIT_UNEXPECTED = 70  # EX_SOFTWARE: a bug, not something the user did
__all__ = ["TOKEN_ENV", "CliError", "build_parser", "config_dir", "main", "spread_options", "token_from_env"]


class CliError(Exception):
    """A user error a handler reports as one line (``qilu-hub: MESSAGE``) with ``code`` as the exit status."""

    def __init__(self, message: str, code: int = EXIT_USER) -> None:
        super().__init__(message)
        self.code = code


def token_from_env() -> str | None:
    """The access token from ``$QILU_HUB_TOKEN``, else from the deprecated ``$QILU_TOKEN`` (with a note)."""
    token, deprecated = token_from_environment()
    if deprecated:
        print(f"qilu-hub: ${DEPRECATED_TOKEN_ENV} is deprecated; set ${TOKEN_ENV} instead", file=sys.stderr)
    return token


def spread_options(parser: argparse.ArgumentParser, dests: Iterable[str]) -> None:
    """Accept ``parser``'s options named by ``dests`` on every subcommand below it too (the argparse ``parents``
    mechanism, applied after the subcommands are registered, so no module has to remember to pass parents)."""
    wanted = set(dests)
    _spread(parser, [a for a in parser._actions if a.dest in wanted])


def _spread(parser: argparse.ArgumentParser, shared: list[argparse.Action]) -> None:
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for sub in {id(p): p for p in action.choices.values()}.values():  # aliases share one parser
            taken = {s for a in sub._actions for s in a.option_strings}
            for original in shared:
                if taken.intersection(original.option_strings):
                    continue  # the subcommand has its own option of that name (xr --hub): its own wins
                inherited = copy.copy(original)
                inherited.default = argparse.SUPPRESS  # absent: never overwrites the value given before it
                inherited.required = False
                sub._add_action(inherited)
            _spread(sub, shared)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qilu-hub",
        description="qilu-hub: smart-home and VR interop hub",
    )
    parser.add_argument("--version", action="version", version=f"qilu-hub {__version__}")
    parser.add_argument("--config", type=Path, default=None, metavar="DIR",
                        help=f"configuration directory (default: {default_config_dir()})")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging; tracebacks of unexpected errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    spread_options(parser, ("config", "verbose"))
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
    except CliError as err:
        print(f"qilu-hub: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        return 130
    except OSError as err:  # a file or socket the user named: say which, not where in our code
        where = f": {err.filename}" if err.filename else ""
        print(f"qilu-hub: {err.strerror or err}{where}", file=sys.stderr)
        return EXIT_USER
    except Exception as err:
        if args.verbose:
            raise
        print(f"qilu-hub: unexpected error: {type(err).__name__}: {err} (run with -v for the traceback)",
              file=sys.stderr)
        return EXIT_UNEXPECTED


if __name__ == "__main__":
    sys.exit(main())
