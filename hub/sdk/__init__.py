"""The driver SDK: everything an appliance maker's driver may import from the hub, and nothing else.

``__all__`` is the whole promise (docs/architecture.md, "What an appliance maker may import"): these
names keep their meaning within a major version; everything else in the hub may change at any time.
The implementation lives in private modules (``_driver``, ``_entity``, ...); import from here.
Simulators and tests also use :mod:`qilu_hub.sdk.testing`. See docs/writing-a-driver.md.

``PassiveBleConnection`` and ``parser_supports`` bring the BLE parser stack (habluetooth,
sensor-state-data) with them, so they are imported on first use: a manifest, and the hub, load without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..appliances.bind_keys import BindKey
from ..capabilities import CAPABILITIES, CommandError, domain_for, merged_attributes, merged_commands, validate_command
from ..context import Context
from ..discovery.models import BleInfo, BleMatcher, DiscoveryInfo, MdnsInfo, MdnsMatcher
from ..model import Entity
from ._context import DeviceContext
from ._driver import DeviceConnection, DiscoveredAppliance, Driver, Manifest, Quality
from ._entity import EntityDescription, EntityPublisher, ValueSource, resolve
from ._helpers import Backoff, PollingCoordinator, reconnect_with_backoff
from ._parser_log import limit_parser_log

if TYPE_CHECKING:
    from ._passive_ble import PassiveBleConnection, parser_supports

__all__ = [
    "CAPABILITIES",
    "Backoff",
    "BindKey",
    "BleInfo",
    "BleMatcher",
    "CommandError",
    "Context",
    "DeviceConnection",
    "DeviceContext",
    "DiscoveredAppliance",
    "DiscoveryInfo",
    "Driver",
    "Entity",
    "EntityDescription",
    "EntityPublisher",
    "Manifest",
    "MdnsInfo",
    "MdnsMatcher",
    "PassiveBleConnection",
    "PollingCoordinator",
    "Quality",
    "ValueSource",
    "domain_for",
    "limit_parser_log",
    "merged_attributes",
    "merged_commands",
    "parser_supports",
    "reconnect_with_backoff",
    "resolve",
    "validate_command",
]


_PASSIVE_BLE = frozenset({"PassiveBleConnection", "parser_supports"})


def __getattr__(name: str) -> Any:
    if name in _PASSIVE_BLE:
        from . import _passive_ble

        return getattr(_passive_ble, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
