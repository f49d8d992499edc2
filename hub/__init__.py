"""qilu-hub: a smart-home and VR interop hub.

The public API of the core; everything else in ``hub`` is an implementation module.
"""

from .bus import MATCH_ALL, Event, EventBus, EventType, Subscription
from .capabilities import CAPABILITIES, Capability, CommandError, CommandSpec, ValueSpec
from .config import ConfigError, load_config
from .const import __version__
from .context import Context
from .core import EVENT_HUB_STARTED, EVENT_HUB_STOPPING, Component, Hub
from .model import Area, Device, Entity, Pose
from .states import EVENT_STATE_CHANGED, UNAVAILABLE, UNKNOWN, State, StateChangedData, StateMachine
from .tokens import Scopes, Token

__all__ = [
    "CAPABILITIES",
    "EVENT_HUB_STARTED",
    "EVENT_HUB_STOPPING",
    "EVENT_STATE_CHANGED",
    "MATCH_ALL",
    "UNAVAILABLE",
    "UNKNOWN",
    "Area",
    "Capability",
    "CommandError",
    "CommandSpec",
    "Component",
    "ConfigError",
    "Context",
    "Device",
    "Entity",
    "Event",
    "EventBus",
    "EventType",
    "Hub",
    "Pose",
    "Scopes",
    "State",
    "StateChangedData",
    "StateMachine",
    "Subscription",
    "Token",
    "ValueSpec",
    "__version__",
    "load_config",
]
