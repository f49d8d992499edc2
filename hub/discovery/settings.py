"""The ``discovery`` section of ``configuration.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qilu_hub.config import ConfigError, Schema, f, register_section
from qilu_hub.const import CONFIG_FILE

SCHEMA: Schema = {
    "mdns": {
        "enabled": f(bool, default=True),
        "interfaces": f(list, default=[], items=(str,),
                        help="IPv4 addresses to use; empty means every interface (a real home network only)"),
        "ipv6": f(bool, default=False, help="also browse and resolve over IPv6 (Matter appliances announce there)"),
    },
    "ble": {
        "enabled": f(bool, default=True),
        "adapters": f(list, default=[], items=(str,), help="e.g. [hci0, hci1]; empty means the default adapter"),
        "scanning_mode": f(str, default="auto", choices=("auto", "active", "passive")),
        "timeout": f(int, float, default=300, minimum=1, help="seconds without adverts before a device is lost"),
        "watchdog": f(int, float, default=90, minimum=1, help="seconds of silence before the scanner restarts"),
        "max_connections": f(int, default=3, minimum=1),
    },
    "auto_adopt": f(dict, default={}, help="driver name: true/false, overriding the driver's manifest"),
    # Anyone on the LAN can announce appliances: pending entries are capped, least recently seen dropped first.
    "inbox": {
        "max_pending": f(int, default=256, minimum=1, help="pending inbox entries kept in all"),
        "max_pending_per_address": f(int, default=32, minimum=1,
                                     help="pending inbox entries kept per advertised address"),
    },
}

register_section("discovery", SCHEMA)


def _auto_adopt(value: dict[Any, Any]) -> dict[str, bool]:
    for driver, flag in value.items():
        if not isinstance(flag, bool):
            # Validated here because the generic schema cannot describe a mapping's values.
            raise ConfigError(CONFIG_FILE, None, f"discovery.auto_adopt.{driver}",
                              f"must be true or false, not {flag!r}")
    return {str(k): v for k, v in value.items()}


@dataclass(slots=True)
class DiscoverySettings:
    mdns_enabled: bool = True
    mdns_interfaces: list[str] = field(default_factory=list)
    mdns_ipv6: bool = False
    ble_enabled: bool = True
    ble_adapters: list[str] = field(default_factory=list)
    ble_scanning_mode: str = "auto"
    ble_timeout: float = 300.0
    ble_watchdog: float = 90.0
    ble_max_connections: int = 3
    auto_adopt: dict[str, bool] = field(default_factory=dict)
    inbox_max_pending: int = 256
    inbox_max_pending_per_address: int = 32

    @classmethod
    def from_config(cls, section: dict[str, Any] | None) -> DiscoverySettings:
        section = section or {}
        mdns = section.get("mdns") or {}
        ble = section.get("ble") or {}
        inbox = section.get("inbox") or {}
        return cls(
            mdns_enabled=bool(mdns.get("enabled", True)),
            mdns_interfaces=list(mdns.get("interfaces") or []),
            mdns_ipv6=bool(mdns.get("ipv6", False)),
            ble_enabled=bool(ble.get("enabled", True)),
            ble_adapters=list(ble.get("adapters") or []),
            ble_scanning_mode=str(ble.get("scanning_mode", "auto")),
            ble_timeout=float(ble.get("timeout", 300)),
            ble_watchdog=float(ble.get("watchdog", 90)),
            ble_max_connections=int(ble.get("max_connections", 3)),
            auto_adopt=_auto_adopt(section.get("auto_adopt") or {}),
            inbox_max_pending=int(inbox.get("max_pending", 256)),
            inbox_max_pending_per_address=int(inbox.get("max_pending_per_address", 32)),
        )
