"""The ``discovery:`` configuration section."""

from __future__ import annotations

from pathlib import Path

import pytest

from qilu_hub.config import ConfigError, load_config
from qilu_hub.discovery import DiscoverySettings


def test_section_is_validated_and_read(tmp_path: Path) -> None:
    (tmp_path / "configuration.yaml").write_text(
        "discovery:\n  mdns:\n    interfaces: [127.0.0.1]\n  ble:\n    enabled: false\n    adapters: [hci1]\n"
        "    scanning_mode: active\n  auto_adopt:\n    shelly: true\n")
    settings = DiscoverySettings.from_config(load_config(tmp_path)["discovery"])
    assert settings.mdns_interfaces == ["127.0.0.1"] and not settings.ble_enabled
    assert settings.ble_adapters == ["hci1"] and settings.ble_scanning_mode == "active"
    assert settings.auto_adopt == {"shelly": True} and settings.ble_timeout == 300


def test_bad_values_are_refused_with_their_key(tmp_path: Path) -> None:
    (tmp_path / "configuration.yaml").write_text("discovery:\n  ble:\n    scanning_mode: loud\n")
    with pytest.raises(ConfigError, match=r"discovery\.ble\.scanning_mode"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match=r"discovery\.auto_adopt\.shelly"):
        DiscoverySettings.from_config({"auto_adopt": {"shelly": "yes"}})


def test_inbox_caps_have_gateway_defaults_and_are_validated(tmp_path: Path) -> None:
    defaults = DiscoverySettings.from_config(load_config(tmp_path)["discovery"])
    assert (defaults.inbox_max_pending, defaults.inbox_max_pending_per_address) == (256, 32)
    (tmp_path / "configuration.yaml").write_text("discovery:\n  inbox:\n    max_pending: 40\n"
                                                 "    max_pending_per_address: 4\n")
    settings = DiscoverySettings.from_config(load_config(tmp_path)["discovery"])
    assert (settings.inbox_max_pending, settings.inbox_max_pending_per_address) == (40, 4)
    (tmp_path / "configuration.yaml").write_text("discovery:\n  inbox:\n    max_pending: 0\n")
    with pytest.raises(ConfigError, match=r"discovery\.inbox\.max_pending"):
        load_config(tmp_path)
