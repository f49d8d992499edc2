"""The ``mqtt`` configuration section."""

from __future__ import annotations

from pathlib import Path

import pytest

import qilu_hub.mqtt  # noqa: F401  (registers the section)
from qilu_hub.config import ConfigError, load_config
from qilu_hub.mqtt import MqttSettings


def test_section_loads_from_yaml(tmp_path: Path) -> None:
    (tmp_path / "configuration.yaml").write_text(
        "mqtt:\n  enabled: true\n  host: 127.0.0.1\n  port: 8883\n  tls: true\n  ca_file: /etc/ca.pem\n"
        "  username: hub\n  password: pw\n  hub_id: flat_3b\n  federation: false\n  import: false\n")
    config = load_config(tmp_path)
    settings = MqttSettings.from_config(config["mqtt"])
    assert settings.port == 8883 and settings.tls and settings.hub_id == "flat_3b"
    assert settings.federation is False and settings.import_ is False
    assert settings.discovery_prefix == "homeassistant" and settings.base_topic == "qilu"


def test_bad_values_are_refused(tmp_path: Path) -> None:
    (tmp_path / "configuration.yaml").write_text("mqtt:\n  port: many\n")
    with pytest.raises(ConfigError, match="line 2"):
        load_config(tmp_path)
    (tmp_path / "configuration.yaml").write_text("mqtt:\n  brokr: x\n")
    with pytest.raises(ConfigError, match="not a known option"):
        load_config(tmp_path)
    with pytest.raises(ValueError, match="hub_id"):
        MqttSettings.from_config({"hub_id": "a/b"})
    with pytest.raises(ValueError, match="base_topic"):
        MqttSettings.from_config({"base_topic": "qilu/#"})
    with pytest.raises(ValueError, match="go together"):
        MqttSettings.from_config({"client_cert": "/c.pem"})


def test_zigbee2mqtt_native_reading_is_configured_in_its_own_block(tmp_path: Path) -> None:
    (tmp_path / "configuration.yaml").write_text("mqtt:\n  enabled: true\n")
    defaults = MqttSettings.from_config(load_config(tmp_path)["mqtt"])
    assert defaults.zigbee2mqtt is True and defaults.zigbee2mqtt_base_topic == "zigbee2mqtt"
    (tmp_path / "configuration.yaml").write_text(
        "mqtt:\n  zigbee2mqtt:\n    enabled: false\n    base_topic: z2m/flat\n")
    settings = MqttSettings.from_config(load_config(tmp_path)["mqtt"])
    assert settings.zigbee2mqtt is False and settings.zigbee2mqtt_base_topic == "z2m/flat"
    (tmp_path / "configuration.yaml").write_text("mqtt:\n  zigbee2mqtt:\n    base_topik: x\n")
    with pytest.raises(ConfigError, match=r"mqtt\.zigbee2mqtt\.base_topik"):
        load_config(tmp_path)
    with pytest.raises(ValueError, match=r"zigbee2mqtt\.base_topic"):
        MqttSettings.from_config({"zigbee2mqtt": {"base_topic": "z2m/#"}})
