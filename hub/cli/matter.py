"""Matter subcommands: ``matter server install`` (matter-server's own venv), ``matter commission CODE``, and,
through the running hub's API (``--hub``/``--token``, as ``qilu-hub device``), ``matter share DEVICE`` (open a
commissioning window and print the pairing code another ecosystem commissions it with) and ``matter remove
DEVICE`` (take the node off the fabric; its devices and entities go with it). DEVICE: the device's id, name or
a name prefix only it has (any device of the node: a bridged one names its bridge), or the Matter node id.

``commission`` works like ``inbox adopt``: it finds the commissionable appliance the code opens among the
inbox's Matter entries (by discriminator, and vendor and product ids for a QR code), keeps the code as that
entry's secret and marks it adopted; the running hub commissions it within a few seconds (a stopped one when
it next starts and hears the appliance). The code may be read from stdin (``-``), out of the shell history.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ..appliances.inbox import EntryState, Inbox
from ..appliances.setup_codes import SetupCodes, check_setup_code
from ..config import ensure_config_dir
from ..const import CONFIG_FILE, REGISTRY_DB
from ..matter.codes import SetupCodeError, parse_setup_code
from ..storage import RegistryStore
from . import TOKEN_ENV, CliError, config_dir, spread_options, token_from_env


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
    share = actions.add_parser("share", help="share a Matter device with another ecosystem: print a pairing code")
    share.add_argument("device", help="the device's id, name or name prefix, or the Matter node id")
    share.add_argument("--timeout", type=int, default=300, help="seconds the window stays open, 180 to 900")
    share.set_defaults(func=cmd_share)
    remove = actions.add_parser("remove", help="remove a Matter device's node from the fabric and the hub")
    remove.add_argument("device", help="the device's id, name or name prefix, or the Matter node id")
    remove.set_defaults(func=cmd_remove)
    for parser in (share, remove):
        parser.add_argument("--hub", default=None, help="the running hub's URL (default: as its configuration says)")
        parser.add_argument("--token", default=None, help=f"an admin token of the running hub (default: ${TOKEN_ENV})")
        spread_options(parser, ("hub", "token"))


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


# -- through the running hub ---------------------------------------------------------------------------
async def _rest(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),
                                         headers={"Authorization": f"Bearer {token}"}) as session, \
                session.request(method, url, json=body) as response:
            reply = await response.json(content_type=None)
            if response.status != 200:
                message = reply.get("message") if isinstance(reply, dict) else reply
                raise CliError(f"the hub refused: {message} (HTTP {response.status})")
            return reply
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as err:
        raise CliError(f"cannot reach the hub at {url}: {err or type(err).__name__}") from None


def _node_of(args: argparse.Namespace) -> tuple[str, str, int, str]:
    """The running hub's URL, the token, and the node id and name of ``args.device``."""
    from .area import Online, _device, _device_name, _hub_url

    token = args.token or token_from_env()
    if not token:
        raise CliError(f"this goes through the running hub: give an admin token with --token or ${TOKEN_ENV}")
    url = (args.hub or _hub_url(args)).rstrip("/")
    nodes: dict[str, dict[str, Any]] = asyncio.run(_rest("GET", f"{url}/api/matter", token))["nodes"]
    if args.device.isdigit() and args.device in nodes:
        return url, token, int(args.device), f"node {args.device}"
    from ..capabilities import CommandError

    try:
        device = _device(Online(url, token), args.device)
    except CommandError as err:
        raise CliError(f"{err.message} [{err.code}]") from None
    for node_id, node in nodes.items():
        if device["id"] in node.get("device_ids", ()):
            return url, token, int(node_id), _device_name(device)
    raise CliError(f"{_device_name(device)} is not a Matter device of this hub")


def cmd_share(args: argparse.Namespace) -> int:
    url, token, node_id, name = _node_of(args)
    codes = asyncio.run(_rest("POST", f"{url}/api/matter/nodes/{node_id}/share", token, {"timeout": args.timeout}))
    print(f"{name} (node {node_id}) can be added to another Matter controller for {codes['timeout']} s with:")
    print(f"  manual pairing code: {codes['manual_code']}")
    print(f"  QR code payload:     {codes['qr_code']}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    url, token, node_id, name = _node_of(args)
    asyncio.run(_rest("DELETE", f"{url}/api/matter/nodes/{node_id}", token))
    print(f"{name} (node {node_id}) removed from the fabric, with its devices and entities")
    return 0
