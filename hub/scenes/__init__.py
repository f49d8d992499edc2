"""Scene files: home scenes (target states + triggers) and immersive XR control scenes.

Format: scenes/schema.json."""

from ..const import EVENT_SCENE_RECOGNIZED
from .catalog import Catalog, FixedEntityCatalog, HubCatalog
from .loader import SceneError, SceneIssue, load_scene_file, parse_scene_text, schema
from .manager import SceneManager, SituationGate, from_config, next_fire
from .model import (
    ActionBinding,
    CommandCall,
    Control,
    HomeScene,
    ImmersiveScene,
    Panel,
    Placement,
    SceneFile,
    resolve_binding,
)

__all__ = [
    "EVENT_SCENE_RECOGNIZED",
    "ActionBinding",
    "Catalog",
    "CommandCall",
    "Control",
    "FixedEntityCatalog",
    "HomeScene",
    "HubCatalog",
    "ImmersiveScene",
    "Panel",
    "Placement",
    "SceneError",
    "SceneFile",
    "SceneIssue",
    "SceneManager",
    "SituationGate",
    "from_config",
    "load_scene_file",
    "next_fire",
    "parse_scene_text",
    "resolve_binding",
    "schema",
]
