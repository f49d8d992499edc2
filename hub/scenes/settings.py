"""The ``scenes`` section of ``configuration.yaml`` (import registers it with the config loader)."""

from __future__ import annotations

from qilu_hub.config import Schema, f, register_section

SCHEMA: Schema = {
    "paths": f(
        list,
        default=["scenes"],
        items=(str,),
        help="folders (all *.yaml inside) or files with scenes; relative to the config directory",
    ),
    "watch_interval": f(
        float, int,
        default=2.0,
        minimum=0,
        help="seconds between checks of the scene files for changes (home scenes follow, XR clients get the new "
             "scene at once); 0 checks only at start",
    ),
}

register_section("scenes", SCHEMA)
