"""Scene files: home scenes (target states + triggers) and immersive XR control scenes.

Format: scenes/schema.json."""

from .catalog import Catalog, HubCatalog, StaticCatalog
from .loader import SceneError, SceneIssue, load_scene_file, parse_scene_text, schema
from .manager import SCENE_RECOGNIZED, SceneManager, SituationGate, from_config, next_fire
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
    "SCENE_RECOGNIZED",
    "ActionBinding",
    "Catalog",
    "CommandCall",
    "Control",
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
    "StaticCatalog",
    "from_config",
    "load_scene_file",
    "next_fire",
    "parse_scene_text",
    "resolve_binding",
    "schema",
]
