"""`qilu-hub scenes check FILE...`: validate scene files (schema, then against this hub's devices)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_SCENE = 3


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("scenes", help="work with scene files (home and immersive scenes)")
    sub = p.add_subparsers(dest="scenes_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser("check", help="validate scene files; errors are printed as file:line: message")
    check.add_argument("files", nargs="+", type=Path)
    check.add_argument(
        "--schema-only", action="store_true", help="do not check entities and commands against the hub's registry"
    )
    check.set_defaults(func=cmd_check)


class _RegistryView:
    """Just enough of a hub for HubCatalog, read from the config directory (the hub need not run)."""

    def __init__(self, entities: Any) -> None:
        from qilu_hub.capabilities import validate_command

        self.entities = entities
        outer = self

        class Commands:
            def validate(self, entity_id: str, command: str, args: dict[str, Any]) -> None:
                entity = outer.entities.get(entity_id)
                validate_command(entity.commands, command, args)

        self.commands = Commands()


def cmd_check(args: argparse.Namespace) -> int:
    from qilu_hub.scenes import HubCatalog, SceneError, load_scene_file

    catalog = None
    store = None
    if not args.schema_only:
        from qilu_hub.bus import EventBus
        from qilu_hub.cli import config_dir
        from qilu_hub.config import ensure_config_dir
        from qilu_hub.const import REGISTRY_DB
        from qilu_hub.registry import AreaRegistry, DeviceRegistry, EntityRegistry
        from qilu_hub.storage import RegistryStore

        store = RegistryStore(ensure_config_dir(config_dir(args)) / REGISTRY_DB)
        bus = EventBus()
        entities = EntityRegistry(store, bus, DeviceRegistry(store, bus), AreaRegistry(store, bus))
        catalog = HubCatalog(_RegistryView(entities))
    failed = False
    try:
        for f in args.files:
            try:
                sf = load_scene_file(f, catalog)
            except SceneError as e:
                failed = True
                print(e, file=sys.stderr)
                continue
            print(f"{f}: OK ({len(sf.home_scenes)} home, {len(sf.immersive_scenes)} immersive)")
    finally:
        if store is not None:
            store.close()
    return EXIT_SCENE if failed else 0
