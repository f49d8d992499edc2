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

    def __init__(self, entities: Any, devices: Any, areas: Any) -> None:
        from qilu_hub.capabilities import validate_command

        self.entities, self.devices, self.areas = entities, devices, areas
        outer = self

        class Commands:
            def validate(self, entity_id: str, command: str, args: dict[str, Any]) -> None:
                entity = outer.entities.get(entity_id)
                validate_command(entity.commands, command, args)

        self.commands = Commands()


class _AreasWithConfig:
    """The registry's areas and those ``areas:`` in the configuration names (a hub not started yet has only these)."""

    def __init__(self, registry: Any, config: dict[str, Any]) -> None:
        from qilu_hub.model import Area, slugify

        self._areas = {a.id: a for a in registry.all()}
        for item in config.get("areas") or []:
            area_id = slugify(item["name"])
            self._areas.setdefault(area_id, Area(area_id, item["name"], item.get("floor")))

    def get(self, area_id: str) -> Any:
        return self._areas.get(area_id)

    def all(self) -> list[Any]:
        return list(self._areas.values())


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
        from qilu_hub.setup import load_hub_config
        from qilu_hub.storage import RegistryStore

        directory = ensure_config_dir(config_dir(args))
        config = load_hub_config(directory)
        store = RegistryStore(directory / REGISTRY_DB)
        bus = EventBus()
        devices, areas = DeviceRegistry(store, bus), AreaRegistry(store, bus)
        entities = EntityRegistry(store, bus, devices, areas)
        catalog = HubCatalog(_RegistryView(entities, devices, _AreasWithConfig(areas, config)))
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
