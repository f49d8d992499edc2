"""Matter subcommands: ``matter server install`` (matter-server's own venv) and ``matter commission CODE``.

``commission`` works like ``inbox adopt``: it finds the commissionable appliance the code opens among the
inbox's Matter entries (by discriminator, and vendor and product ids for a QR code), keeps the code as that
entry's secret and marks it adopted; the running hub commissions it within a few seconds (a stopped one when
it next starts and hears the appliance). The code may be read from stdin (``-``), out of the shell history.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..appliances.inbox import EntryState, Inbox
from ..appliances.setup_codes import SetupCodes, check_setup_code
from ..config import ensure_config_dir
from ..const import CONFIG_FILE, REGISTRY_DB
from ..matter.codes import SetupCodeError, parse_setup_code
from ..storage import RegistryStore
from . import config_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    matter = subparsers.add_parser("matter", help="Matter: the matter-server companion and commissioning")
    actions = matter.add_subparsers(dest="matter_command", metavar="ACTION", required=True)
    server = actions.add_parser("server", help="the matter-server companion")
    server_actions = server.add_subparsers(dest="server_command", metavar="ACTION", required=True)
    install = server_actions.add_parser("install", help="create matter-server's venv and install it there")
    install.add_argument("--venv", type=Path, default=None,
                         help="where (default: matter.venv of the config, else matter-server/venv in the config dir)")
    install.add_argument("--python", default=None, help="the Python the venv is made with (default: this one)")
    install.set_defaults(func=cmd_server_install)
    commission = actions.add_parser("commission", help="commission a Matter appliance from the inbox with its code")
    commission.add_argument("code", help="the QR payload (MT:...) or the manual pairing code; '-' reads it from stdin")
    commission.set_defaults(func=cmd_commission)


def _settings_venv(args: argparse.Namespace) -> Path:
    from ..matter.settings import MatterSettings
    from ..setup import load_hub_config

    directory = config_dir(args)
    config = load_hub_config(directory) if (directory / CONFIG_FILE).exists() else {}
    venv = MatterSettings.from_config(config.get("matter"), directory).venv
    assert venv is not None
    return venv


def cmd_server_install(args: argparse.Namespace) -> int:
    from ..matter.server import SERVER_REQUIREMENT, ServerUnavailable, install

    venv = args.venv or _settings_venv(args)
    print(f"installing {SERVER_REQUIREMENT} into {venv} ...", file=sys.stderr)
    try:
        version = install(venv, args.python)
    except (OSError, ServerUnavailable) as err:
        print(f"qilu-hub: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # pip's own failure (offline, no wheel for this platform): its output is above
        print(f"qilu-hub: installing matter-server failed: {err}", file=sys.stderr)
        return 1
    print(f"matter-server {version} in {venv}")
    return 0


def cmd_commission(args: argparse.Namespace) -> int:
    text = sys.stdin.readline().strip() if args.code == "-" else args.code
    try:
        code = parse_setup_code(text)
    except SetupCodeError as err:
        print(f"qilu-hub: {err}", file=sys.stderr)  # never repeats the code
        return 2
    directory = config_dir(args)
    ensure_config_dir(directory)
    store = RegistryStore(directory / REGISTRY_DB)
    try:
        inbox = Inbox(store)
        candidates = [e for e in inbox.entries() if e.driver == "matter" and e.state is not EntryState.IGNORED
                      and isinstance(e.data.get("discriminator"), int)
                      and code.matches(e.data["discriminator"], e.data.get("vendor_id"), e.data.get("product_id"))]
        if not candidates:
            print("qilu-hub: no commissionable Matter appliance in the inbox matches this code; is it in pairing "
                  "mode, and has the hub (with discovery) seen it? `qilu-hub inbox list` shows what it saw",
                  file=sys.stderr)
            return 1
        if len(candidates) > 1:
            keys = ", ".join(e.key for e in candidates)
            print(f"qilu-hub: the code fits several appliances ({keys}): a manual code carries only part of the "
                  "discriminator; use the QR code's payload (MT:...)", file=sys.stderr)
            return 1
        entry = candidates[0]
        SetupCodes(store).set(entry.driver, entry.key, check_setup_code(entry.data, code.text, entry.title))
        inbox.set_state(entry.key, EntryState.ADOPTED)
    finally:
        store.close()
    print(f"{entry.key}: adopted ({entry.title})")
    print("A running hub commissions it within a few seconds; a stopped one when it next starts and sees the "
          "appliance.", file=sys.stderr)
    return 0
