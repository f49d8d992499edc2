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
}

register_section("scenes", SCHEMA)
