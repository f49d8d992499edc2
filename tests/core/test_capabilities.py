import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qilu_hub import capabilities as caps
from qilu_hub.capabilities import CommandError
from qilu_hub.model import Entity


def light() -> Entity:
    return Entity("light.lamp", "u1", None, ("on_off", "level", "color_temperature"), "Lamp")


def test_light_domain_and_merged_turn_on_arguments() -> None:
    entity = light()
    assert entity.domain == "light"
    assert set(entity.commands) == {"turn_on", "turn_off", "toggle"}
    assert {"brightness", "color_temp_kelvin", "brightness_pct", "transition"} <= set(entity.commands["turn_on"].args)


def test_valid_command_is_cleaned() -> None:
    clean = caps.validate_command(light().commands, "turn_on", {"brightness": 128.0, "color_temp_kelvin": 2700})
    assert clean == {"brightness": 128, "color_temp_kelvin": 2700}
    assert isinstance(clean["brightness"], int)


@pytest.mark.parametrize(
    ("command", "args", "code", "fragment"),
    [
        ("explode", {}, "not_supported", "explode"),
        ("turn_on", {"brightness": 300}, "out_of_range", "brightness"),
        ("turn_on", {"brightness": "high"}, "invalid_format", "number"),
        ("turn_on", {"brightness": True}, "invalid_format", "number"),
        ("turn_on", {"brightness": 1.5}, "invalid_format", "whole"),
        ("turn_on", {"colour": 1}, "invalid_format", "unknown argument"),
        ("turn_on", ["brightness"], "invalid_format", "object"),
    ],
)
def test_bad_commands_get_clear_errors(command: str, args: object, code: str, fragment: str) -> None:
    with pytest.raises(CommandError) as info:
        caps.validate_command(light().commands, command, args)  # type: ignore[arg-type]
    assert info.value.code == code
    assert fragment in info.value.message


def test_required_and_enum_arguments() -> None:
    climate = Entity("climate.x", "u2", None, ("thermostat",), "Thermostat")
    with pytest.raises(CommandError, match="needs argument 'temperature'"):
        caps.validate_command(climate.commands, "set_temperature", {})
    with pytest.raises(CommandError, match="one of"):
        caps.validate_command(climate.commands, "set_hvac_mode", {"hvac_mode": "warm"})
    with pytest.raises(CommandError, match="finite"):
        caps.validate_command(climate.commands, "set_temperature", {"temperature": float("nan")})
    assert caps.validate_command(climate.commands, "set_temperature", {"temperature": 22}) == {"temperature": 22.0}


def test_rgb_validation() -> None:
    entity = Entity("light.rgb", "u3", None, ("on_off", "color"), "RGB")
    assert caps.validate_command(entity.commands, "turn_on", {"rgb_color": [255, 0, 10]})["rgb_color"] == [255, 0, 10]
    with pytest.raises(CommandError):
        caps.validate_command(entity.commands, "turn_on", {"rgb_color": [256, 0, 0]})


def test_sensor_metadata_from_catalogue() -> None:
    sensor = Entity("sensor.t", "u4", None, ("temperature",), "T")
    assert (sensor.domain, sensor.device_class, sensor.unit) == ("sensor", "temperature", "°C")
    assert sensor.commands == {}
    with pytest.raises(KeyError, match="unknown capability"):
        Entity("sensor.bad", "u5", None, ("teleport",), "Bad")


def test_every_capability_declares_consistent_schemas() -> None:
    for cap in caps.CAPABILITIES.values():
        assert cap.domain
        cap.state.json_schema()
        for spec in cap.commands.values():
            for value in spec.args.values():
                assert value.json_schema()["type"] in {"boolean", "integer", "number", "string", "array"}



json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=300)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
ALL_COMMANDS = caps.merged_commands(caps.CAPABILITIES)


@settings(max_examples=1000, deadline=None)
@given(command=st.one_of(st.sampled_from(sorted(ALL_COMMANDS)), st.text(max_size=12)),
       args=st.one_of(json_values, st.dictionaries(st.sampled_from(
           sorted({a for c in ALL_COMMANDS.values() for a in c.args})), json_values, max_size=4)))
def test_validation_accepts_or_refuses_cleanly(command: str, args: object) -> None:
    try:
        clean = caps.validate_command(ALL_COMMANDS, command, args)  # type: ignore[arg-type]
    except CommandError as err:
        assert err.code in {"not_supported", "invalid_format", "out_of_range"} and err.message
    else:
        spec = ALL_COMMANDS[command]
        assert set(clean) <= set(spec.args)
        # What passes validation passes it again unchanged: drivers can trust it.
        assert caps.validate_command(ALL_COMMANDS, command, clean) == clean
