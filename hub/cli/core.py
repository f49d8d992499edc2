"""Core subcommands: run, demo, token, devices."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import shutil
import socket
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from ..bus import EventBus
from ..config import ensure_config_dir
from ..const import CONFIG_FILE, REGISTRY_DB
from ..core import Hub
from ..registry import AreaRegistry, DeviceRegistry, EntityRegistry
from ..setup import build_hub
from ..storage import RegistryStore
from ..tokens import Scopes, TokenStore, parse_duration
from . import CliError, config_dir

EXIT_USAGE = 2
_LOGGER = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run the hub")
    _listen_options(run)
    run.set_defaults(func=cmd_run)

    demo = subparsers.add_parser("demo", help="run the hub with simulated appliances on loopback")
    demo.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    _listen_options(demo)
    demo.add_argument("--keep", type=Path, default=None, metavar="DIR",
                      help="keep the demo's configuration in DIR (default: a temporary folder removed on exit)")
    demo.set_defaults(func=cmd_demo)

    token = subparsers.add_parser("token", help="manage API access tokens")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = token_sub.add_parser("create", help="create a token (printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--read-only", action="store_true", help="may read but not control")
    create.add_argument("--area", action="append", dest="areas", help="limit to an area id (repeatable)")
    create.add_argument("--entity", action="append", dest="entities", help="limit to an entity id (repeatable)")
    create.add_argument("--admin", action="store_true",
                        help="may manage tokens and adopt discoveries (not with --read-only)")
    create.add_argument("--expires", metavar="DURATION",
                        help="stop working after this long: 30d, 12h, 15m or 90s (default: never)")
    create.set_defaults(func=cmd_token_create)
    token_sub.add_parser("list", help="list tokens").set_defaults(func=cmd_token_list)
    revoke = token_sub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("token_id")
    revoke.set_defaults(func=cmd_token_revoke)

    subparsers.add_parser("devices", help="list devices and their entities").set_defaults(func=cmd_devices)


def _listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, metavar="ADDR",
                        help="address the API listens on (default: hub.bind in the configuration)")
    parser.add_argument("--port", type=int, default=None,
                        help="port the API listens on (default: hub.port in the configuration, 8123)")


async def _run(hub: Hub, seconds: float | None) -> None:
    if seconds is not None:
        asyncio.get_running_loop().call_later(seconds, hub.request_stop)
    await hub.run_until_stopped()


def _port_free(host: str, port: int) -> bool:
    """Whether the API could listen on ``host:port`` now (bound the way the API binds: with SO_REUSEADDR)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise CliError(f"cannot listen on {host}: {err.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    """A port nothing listens on now, chosen by the kernel."""
    family = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _listen_on(hub: Hub, args: argparse.Namespace, *, fall_back: bool) -> None:
    """Apply --host/--port to the hub's API settings; refuse (or, for the demo, move from) a port in use, so the
    user reads one line about the port rather than a traceback about a configuration file."""
    if "api" not in hub.components:
        return
    conf = hub.config["hub"]
    if args.host is not None:
        conf["bind"] = args.host
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise CliError(f"--port {args.port}: not a port (0-65535)", EXIT_USAGE)
        conf["port"] = args.port
    host, port = conf["bind"], conf["port"]
    if port == 0 or _port_free(host, port):
        return
    if fall_back and args.port is None:
        conf["port"] = _free_port(host)
        print(f"qilu-hub demo: port {port} is in use (another hub?); using port {conf['port']} instead "
              "(choose one with --port)")
        return
    also = "" if args.port is not None else f", or change hub.port in {hub.config_dir / CONFIG_FILE}"
    raise CliError(f"cannot listen on {host}:{port}: the port is in use (another hub?); choose another with "
                   f"--port N{also}")


def _log_loaded(hub: Hub) -> None:
    """What this hub runs with, for -v: its components in start order and its drivers with their origin."""
    _LOGGER.debug("components: %s", ", ".join(hub.components))
    manager = hub.components.get("drivers")
    drivers = getattr(manager, "drivers", {})
    for name, driver in sorted(drivers.items()):
        manifest = driver.manifest
        _LOGGER.debug("driver %s %s (%s, quality %s)", name, manifest.version, manifest.title, manifest.quality)
    for origin, error in sorted(getattr(manager, "load_errors", {}).items()):
        _LOGGER.debug("driver %s not loaded: %s", origin, error)


def cmd_run(args: argparse.Namespace) -> int:
    directory = ensure_config_dir(config_dir(args))
    hub = build_hub(directory)
    _listen_on(hub, args, fall_back=False)
    _log_loaded(hub)
    asyncio.run(_run(hub, None))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.keep is not None and args.config is not None and Path(args.keep) != Path(args.config):
        raise CliError("give --config DIR (a configuration to run the demo in) or --keep DIR, not both", EXIT_USAGE)
    chosen = args.keep if args.keep is not None else args.config
    temporary = chosen is None
    directory = Path(tempfile.mkdtemp(prefix="qilu-hub-demo-")) if chosen is None else Path(chosen)
    try:
        return _demo(args, directory, temporary)
    finally:
        if temporary:  # nothing the user asked to keep: leave no folder behind
            shutil.rmtree(directory, ignore_errors=True)


def _demo(args: argparse.Namespace, directory: Path, temporary: bool) -> int:
    ensure_config_dir(directory)
    _install_example_scenes(directory)
    hub = build_hub(directory, demo=True)
    _listen_on(hub, args, fall_back=True)
    _log_loaded(hub)
    _, secret = hub.tokens.create("demo", Scopes(admin=True))
    where = shlex.quote(str(directory))
    kept = "removed when the demo stops; keep it with --keep DIR" if temporary else "kept"
    print(f"qilu-hub demo: config in {directory} ({kept})")
    print(f"qilu-hub demo: access token {secret}")
    url = None
    if "api" in hub.components:
        conf = hub.config["hub"]
        scheme = "https" if conf.get("tls_certificate") else "http"
        host = "127.0.0.1" if conf["bind"] in ("0.0.0.0", "::") else conf["bind"]
        url = f"{scheme}://{host}:{conf['port']}" if conf["port"] else None
        # The token is pasted into the sign-in form, never put in a link (history, Referer).
        if url:
            print(f"qilu-hub demo: dashboard {url}/ (sign in with the access token above)")
    # The follow-ups name this demo's configuration: without --config they would open the default one.
    print("qilu-hub demo: while it runs, try in another terminal:")
    print(f"  qilu-hub devices --config {where}")
    print(f"  qilu-hub token create --config {where} --name phone")
    print(f"  qilu-hub scenes check --config {where} {shlex.quote(str(directory / 'scenes' / 'living_room.yaml'))}")
    if url:
        print(f"  QILU_HUB_TOKEN={secret} qilu-hub label list --hub {url}")
    sys.stdout.flush()
    asyncio.run(_run(hub, args.seconds))
    return 0


def _install_example_scenes(directory: Path) -> None:
    """Give the demo the example scenes (scene.movie_night, ...) unless the directory has scenes already."""
    target = directory / "scenes"
    if target.exists():
        return
    target.mkdir()
    for example in (resources.files("qilu_hub.scene_files") / "examples").iterdir():
        if example.name.endswith(".yaml"):
            (target / example.name).write_text(example.read_text(encoding="utf-8"), encoding="utf-8")


def _tokens(args: argparse.Namespace) -> tuple[RegistryStore, TokenStore]:
    directory = ensure_config_dir(config_dir(args))
    store = RegistryStore(directory / REGISTRY_DB)
    return store, TokenStore(store)


def cmd_token_create(args: argparse.Namespace) -> int:
    if args.read_only and args.admin:
        print("qilu-hub: --read-only and --admin cannot be combined: an admin token changes the hub "
              "(adopts appliances, manages tokens). Choose one.", file=sys.stderr)
        return EXIT_USAGE
    expires = None
    if args.expires is not None:
        try:
            expires = time.time() + parse_duration(args.expires)  # stored absolute: a restart does not extend it
        except ValueError as err:
            print(f"qilu-hub: --expires: {err}", file=sys.stderr)
            return EXIT_USAGE
    store, tokens = _tokens(args)
    scopes = Scopes(
        read_only=args.read_only,
        areas=frozenset(args.areas) if args.areas else None,
        entities=frozenset(args.entities) if args.entities else None,
        admin=args.admin,
    )
    token, secret = tokens.create(args.name, scopes, expires=expires)
    store.close()
    print(f"id:      {token.id}\nname:    {token.name}\nscopes:  {token.scopes.to_dict()}\n"
          f"expires: {_when(token.expires, 'never')}\ntoken:   {secret}")
    print("Store the token now: it is kept only as a hash and cannot be shown again.", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    store, tokens = _tokens(args)
    rows = tokens.list()
    store.close()
    now = time.time()
    print(f"{'ID':<14}{'NAME':<20}{'STATUS':<10}{'LAST USED':<18}{'EXPIRES':<18}SCOPES")
    for t in rows:
        status = "revoked" if t.revoked else "expired" if t.expires is not None and now >= t.expires else "active"
        print(f"{t.id:<14}{t.name[:19]:<20}{status:<10}{_when(t.last_used, 'never'):<18}{_when(t.expires, '-'):<18}"
              f"{t.scopes.to_dict()}")
    return 0


def _when(stamp: float | None, otherwise: str) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp is not None else otherwise


def cmd_token_revoke(args: argparse.Namespace) -> int:
    store, tokens = _tokens(args)
    ok = tokens.revoke(args.token_id)
    store.close()
    if not ok:
        print(f"qilu-hub: no active token with id {args.token_id}", file=sys.stderr)
        return 1
    print(f"revoked {args.token_id}")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    directory = ensure_config_dir(config_dir(args))
    store = RegistryStore(directory / REGISTRY_DB)
    bus = EventBus()
    areas = AreaRegistry(store, bus)
    devices = DeviceRegistry(store, bus)
    entities = EntityRegistry(store, bus, devices, areas)
    # The id in full: scene files place panels `relative_to: device` by it (`ref:`), and the API addresses it.
    print(f"{'ID':<34}{'DEVICE':<28}{'AREA':<16}{'MANUFACTURER':<16}{'MODEL':<22}ENTITIES")
    for device in sorted(devices.all(), key=lambda d: (d.area_id or "", d.display_name)):
        ids = ", ".join(e.entity_id for e in entities.for_device(device.id))
        print(f"{device.id:<34}{device.display_name[:27]:<28}{(device.area_id or '-')[:15]:<16}"
              f"{(device.manufacturer or '-')[:15]:<16}{(device.model or '-')[:21]:<22}{ids}")
    store.close()
    return 0
