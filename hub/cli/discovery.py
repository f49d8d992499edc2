"""Discovery subcommands: ``discover`` (what is on the network now) and ``inbox`` (the stored inbox)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from ..appliances.bind_keys import BindKey, BindKeyError, BindKeys, missing_bind_key
from ..appliances.inbox import EntryState, Inbox, InboxEntry
from ..config import ensure_config_dir
from ..const import REGISTRY_DB
from ..storage import RegistryStore
from . import config_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    discover = subparsers.add_parser("discover", help="browse mDNS (and BLE) for a few seconds and print what answers")
    discover.add_argument("--interface", action="append", dest="interfaces", metavar="ADDR",
                          help="IPv4 address of an interface to browse on (repeatable; default: all interfaces)")
    discover.add_argument("--seconds", type=float, default=5.0, help="how long to listen (default 5)")
    discover.add_argument("--type", action="append", dest="types", metavar="TYPE",
                          help="service type such as _shelly._tcp (repeatable; default: every announced type)")
    discover.add_argument("--ble", action="store_true", help="also scan for BLE adverts (needs BlueZ)")
    discover.add_argument("--json", action="store_true", help="print JSON instead of a table")
    discover.set_defaults(func=cmd_discover)

    inbox = subparsers.add_parser("inbox", help="list or act on discovered appliances waiting in the inbox")
    actions = inbox.add_subparsers(dest="inbox_command", metavar="ACTION")
    actions.add_parser("list", help="list entries (default)").set_defaults(func=cmd_inbox_list)
    for name, text in (("adopt", "adopt an appliance (connected when the hub next sees it)"),
                       ("ignore", "ignore an appliance for good (survives restarts, new addresses, renames)"),
                       ("unignore", "put an ignored appliance back to pending")):
        action = actions.add_parser(name, help=text)
        action.add_argument("key", help="the entry's key, as `qilu-hub inbox list` shows it")
        if name == "adopt":
            action.add_argument("--bind-key", metavar="HEX",
                                help="the 32-hex-digit key of an encrypted BLE sensor; '-' reads it from stdin "
                                     "(keeps it out of the shell history and the process list)")
        action.set_defaults(func=cmd_inbox_set, state={"adopt": EntryState.ADOPTED, "ignore": EntryState.IGNORED,
                                                        "unignore": EntryState.PENDING}[name])
    for name, text in (("confirm-move", "follow an adopted appliance to the new address it was announced at "
                                        "(only if it really moved: anyone on the LAN can announce any appliance)"),
                       ("reject-move", "keep an adopted appliance at its address and forget the announced move")):
        action = actions.add_parser(name, help=text)
        action.add_argument("key", help="the entry's key, as `qilu-hub inbox list` shows it")
        action.set_defaults(func=cmd_inbox_move, confirm=name == "confirm-move")
    inbox.set_defaults(func=cmd_inbox_list)


def _ble_scan(seconds: float) -> tuple[list[dict[str, Any]], str | None]:
    from bleak import BleakScanner

    async def scan() -> list[dict[str, Any]]:
        found = await BleakScanner.discover(timeout=seconds, return_adv=True)
        return [{"address": d.address, "name": adv.local_name, "rssi": adv.rssi,
                 "manufacturer_data": {str(k): v.hex() for k, v in adv.manufacturer_data.items()},
                 "service_data": {k: v.hex() for k, v in adv.service_data.items()},
                 "service_uuids": list(adv.service_uuids)} for d, adv in found.values()]

    try:
        return asyncio.run(scan()), None
    except Exception as err:  # no adapter, no BlueZ, no D-Bus: report, do not fail the command
        return [], _ble_problem(err)


def _ble_problem(err: Exception) -> str:
    """What the user can do about a failed BLE scan, in one line (bleak's own errors name no cause or cure)."""
    if isinstance(err, (FileNotFoundError, ConnectionRefusedError)):  # the system bus socket is not there
        bus = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/run/dbus/system_bus_socket")
        return f"no D-Bus system bus at {bus}, so BlueZ cannot be asked; install and start dbus and bluez"
    text = str(err) or type(err).__name__
    if "org.bluez" in text or "ServiceUnknown" in text:
        return "BlueZ is not running; install bluez and start it (systemctl start bluetooth)"
    if "adapter" in text.lower() or "No Bluetooth" in text:
        return f"no Bluetooth adapter ({text})"
    return f"{type(err).__name__}: {text}"


def cmd_discover(args: argparse.Namespace) -> int:
    from ..appliances.matching import mdns_type
    from ..discovery.mdns import async_browse

    types = [mdns_type(t) for t in args.types] if args.types else None
    started = time.monotonic()
    services = asyncio.run(async_browse(types, args.seconds, args.interfaces))
    ble, ble_error = _ble_scan(args.seconds) if args.ble else ([], None)
    if args.json:
        print(json.dumps({
            "mdns": [{"type": s.type, "name": s.name, "server": s.server, "addresses": list(s.addresses),
                      "port": s.port, "properties": dict(s.properties)} for s in services],
            "ble": ble, "ble_error": ble_error, "seconds": round(time.monotonic() - started, 2)}, indent=2))
        return 0
    print(f"{'TYPE':<24}{'NAME':<40}{'ADDRESS':<22}TXT")
    for s in services:
        txt = " ".join(f"{k}={v}" for k, v in sorted(s.properties.items()))
        instance = s.name.removesuffix("." + s.type)
        print(f"{s.type.removesuffix('.local.'):<24}{instance[:39]:<40}{f'{s.host}:{s.port}':<22}{txt[:80]}")
    print(f"{len(services)} mDNS service(s)")
    if args.ble:
        if ble_error:
            print(f"qilu-hub discover: BLE not scanned: {ble_error}", file=sys.stderr)
        for d in sorted(ble, key=lambda d: d["rssi"], reverse=True):
            print(f"BLE {d['address']}  {d['rssi']:>4} dBm  {d['name'] or '-'}")
    return 0


def _open_inbox(args: argparse.Namespace) -> tuple[RegistryStore, Inbox]:
    store = RegistryStore(ensure_config_dir(config_dir(args)) / REGISTRY_DB)
    return store, Inbox(store)


def _entry_or_say(inbox: Inbox, key: str) -> InboxEntry | None:
    """The entry, or None after telling the user there is none."""
    entry = inbox.get(key)
    if entry is None:
        print(f"qilu-hub: no inbox entry {key!r} (see `qilu-hub inbox list`)", file=sys.stderr)
    return entry


def cmd_inbox_list(args: argparse.Namespace) -> int:
    store, inbox = _open_inbox(args)
    try:
        entries = inbox.entries()
        keys = BindKeys(store)
        flagged = {e.key for e in entries if missing_bind_key(keys, e.driver, e.key, e.data)}
    finally:
        store.close()
    print(f"{'KEY':<34}{'STATE':<10}{'DRIVER':<14}{'SOURCES':<10}{'ADDRESS':<20}TITLE")
    for e in entries:
        note = "  [needs a bind key: inbox adopt KEY --bind-key HEX]" if e.key in flagged else ""
        if e.state is EntryState.ADOPTED and e.move is not None:
            decided = " (confirmed)" if e.move.get("confirmed") else ": inbox confirm-move KEY or reject-move KEY"
            note += (f"  [address change, confirm: adopted at {e.move.get('from')}, announced at "
                     f"{e.move.get('to')}{decided}]")
        print(f"{e.key[:33]:<34}{e.state.value:<10}{e.driver[:13]:<14}{','.join(e.sources):<10}"
              f"{(e.address or '-')[:19]:<20}{e.title}{note}")
    return 0


def cmd_inbox_move(args: argparse.Namespace) -> int:
    store, inbox = _open_inbox(args)
    try:
        entry = _entry_or_say(inbox, args.key)
        if entry is None:
            return 1
        if entry.state is not EntryState.ADOPTED or entry.move is None:
            print(f"qilu-hub: {entry.title} ({entry.key}) has no address change waiting", file=sys.stderr)
            return 1
        moved_from, moved_to = entry.move.get("from"), entry.move.get("to")
        inbox.decide_move(entry.key, args.confirm)
    finally:
        store.close()
    if args.confirm:
        print(f"{entry.key}: follows its move from {moved_from} to {moved_to}")
    else:
        print(f"{entry.key}: stays at {moved_from}; the move to {moved_to} is forgotten")
    print("A running hub acts on this within a few seconds; a stopped one when it next starts.", file=sys.stderr)
    return 0


def _read_bind_key(text: str | None) -> BindKey | None:
    if text is None:
        return None
    return BindKey.parse(sys.stdin.readline() if text == "-" else text)


def cmd_inbox_set(args: argparse.Namespace) -> int:
    try:
        bind_key = _read_bind_key(getattr(args, "bind_key", None))
    except BindKeyError as err:
        print(f"qilu-hub: {err}", file=sys.stderr)  # the message never repeats the key
        return 2
    store, inbox = _open_inbox(args)
    try:
        entry_now = _entry_or_say(inbox, args.key)
        if entry_now is None:
            return 1
        keys = BindKeys(store)
        if bind_key is not None:
            keys.set(entry_now.driver, entry_now.key, bind_key)
        elif args.state is EntryState.ADOPTED and missing_bind_key(keys, entry_now.driver, entry_now.key,
                                                                   entry_now.data):
            print(f"qilu-hub: {entry_now.title} encrypts its adverts; adopt it with --bind-key HEX "
                  "(see docs/discovery.md, 'Encrypted BLE sensors')", file=sys.stderr)
            return 1
        if args.state is EntryState.IGNORED:
            keys.delete(entry_now.driver, entry_now.key)
        entry = inbox.set_state(args.key, args.state)
    finally:
        store.close()
    print(f"{entry.key}: {entry.state.value}")
    if args.state is EntryState.ADOPTED:
        print("A running hub acts on this within a few seconds; a stopped one when it next starts and sees the "
              "appliance.", file=sys.stderr)
    return 0
