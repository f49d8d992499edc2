from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qilu_hub.config import ConfigError, ensure_config_dir, load_config
from qilu_hub.const import CONFIG_FILE


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / CONFIG_FILE).write_text(text)
    return tmp_path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config["hub"]["bind"] == "127.0.0.1" and config["recorder"]["max_size_mb"] == 64


def test_values_are_read_and_ints_become_floats(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "hub:\n  port: 9000\nrecorder:\n  keep_days: 3\n"))
    assert config["hub"]["port"] == 9000 and config["recorder"]["keep_days"] == 3.0
    assert config["hub"]["name"] == "Home"  # defaults fill the rest


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    write(tmp_path, "hub:\n  name: Home\n  prot: 80\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert err.value.line == 3 and err.value.key == "hub.prot"
    assert CONFIG_FILE in str(err.value) and "line 3" in str(err.value)


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "hub:\n  name: Home\n  port: [1, 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert "not valid YAML" in str(err.value) and err.value.line is not None


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("hub:\n  port: eighty\n", "hub.port", "must be int"),
        ("hub:\n  port: true\n", "hub.port", "must be int"),
        ("recorder:\n  max_size_mb: 0\n", "recorder.max_size_mb", "at least"),
        ("logging:\n  level: LOUD\n", "logging.level", "one of"),
        ("areas:\n  - name: Kitchen\n  - flor: 1\n", "areas[1].flor", "not a known option"),
        ("areas:\n  - name: K\n    pose: [1, 2, 3]\n", "areas[0].pose", "mapping"),
        ("areas:\n  - name: K\n    pose: {x: 1, y: 2}\n", "areas[0].pose.z", "required"),
        ("areas:\n  - name: K\n    pose: {x: 1, y: 2, z: .nan}\n", "areas[0].pose.z", "finite number"),
        ("areas:\n  - name: K\n    pose: {x: 1, y: 2, z: 3, w: 1}\n", "areas[0].pose.w", "not a known option"),
        ("areas:\n  - name: K\n    pose: {x: 1, y: 2, z: 3, qw: 2}\n", "areas[0].pose", "unit quaternion"),
        ("hub: 5\n", "hub", "mapping"),
        ("hub:\n  name: A\n  name: B\n", "hub.name", "twice"),
    ],
)
def test_wrong_values(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert err.value.key == key and fragment in str(err.value)


def test_default_file_is_written_once_and_never_overwritten(tmp_path: Path) -> None:
    ensure_config_dir(tmp_path)
    assert load_config(tmp_path)["areas"][0]["name"] == "Living Room"
    (tmp_path / CONFIG_FILE).write_text("hub:\n  nme: x\n")
    ensure_config_dir(tmp_path)
    assert (tmp_path / CONFIG_FILE).read_text() == "hub:\n  nme: x\n"



yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
yaml_values = st.recursive(yaml_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(text=st.one_of(st.text(max_size=200), yaml_values.map(lambda v: __import__("yaml").safe_dump(v))))
def test_any_file_gives_a_config_or_a_config_error(tmp_path: Path, text: str) -> None:
    (tmp_path / CONFIG_FILE).write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config = load_config(tmp_path)
    except ConfigError as err:
        assert CONFIG_FILE in str(err)
    else:
        assert set(config) >= {"hub", "recorder", "areas"}


# Found by fuzz/targets/config.py: these raised TypeError / yaml errors instead of ConfigError.
@pytest.mark.parametrize("text, line", [
    ("hub:\n  name:\n", None),                       # empty value: re-serialising the node failed
    ("hub:\n  name: !ome\n", 2),                      # unknown tag
    ("hub:\n  name: Home\n? port: 812\n", None),     # complex key is fine when scalar...
    ("hub:\n  name: Home\n? [port]\n: 8\n", 3),       # ...but a list as a key is refused with its line
])
def test_fuzz_found_inputs_give_config_errors(tmp_path: Path, text: str, line: int | None) -> None:
    (tmp_path / CONFIG_FILE).write_text(text)
    try:
        load_config(tmp_path)
    except ConfigError as err:
        assert line is None or err.line == line
