"""The value-template subset: the forms devices publish work, everything else is refused clearly."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qilu_hub.mqtt.template import MISSING, TemplateError, compile_template


@pytest.mark.parametrize(("source", "payload", "expected"), [
    ("{{ value_json.temperature }}", b'{"temperature": 21.5}', 21.5),
    ('{{ value_json["state_left"] }}', b'{"state_left": "ON"}', "ON"),
    ("{{ value_json['humidity'] }}", b'{"humidity": 40}', 40),
    ("{{value_json.ENERGY.Power}}", b'{"ENERGY": {"Power": 12}}', 12),
    ("{{ value_json.values[1] }}", b'{"values": [1, 2, 3]}', 2),
    ("{{ value_json.temperature | round(1) }}", b'{"temperature": 21.56}', 21.6),
    ("{{ value_json.level | int }}", b'{"level": "42.7"}', 42),
    ("{{ value_json.t | float }}", b'{"t": "3"}', 3.0),
    ("{{ value | upper }}", b"on", "ON"),
    ("{{ value }}", b"online", "online"),
    ("{{ value_json.state }}", b'{"state": "online"}', "online"),
])
def test_supported_forms(source: str, payload: bytes, expected: object) -> None:
    template = compile_template(source)
    assert template is not None
    assert template.render(payload) == expected


def test_missing_path_is_not_an_error() -> None:
    template = compile_template("{{ value_json.battery }}")
    assert template is not None
    assert template.render(b'{"temperature": 20}') is MISSING
    assert template.render(b'{"battery": {"x": 1}}') == {"x": 1}
    index = compile_template("{{ value_json.v[5] }}")
    assert index is not None and index.render(b'{"v": [1]}') is MISSING


def test_empty_template_means_raw_payload() -> None:
    assert compile_template(None) is None
    assert compile_template("  ") is None


@pytest.mark.parametrize("source", [
    "{% if value_json.a %}1{% endif %}",
    "{{ value_json.a * 10 }}",
    "{{ value_json.a | tojson }}",
    "{{ states('sensor.x') }}",
    "{{ value_json.a }} and {{ value_json.b }}",
    "value_json.a",
    "{{ value_json.a[ }}",
])
def test_unsupported_forms_are_refused(source: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_template(source)
    assert "unsupported template" in str(info.value)


def test_bad_payloads_raise_clearly() -> None:
    template = compile_template("{{ value_json.a }}")
    assert template is not None
    with pytest.raises(TemplateError, match="not JSON"):
        template.render(b"not json")
    number = compile_template("{{ value_json.a | float }}")
    assert number is not None
    with pytest.raises(TemplateError, match="cannot apply float"):
        number.render(b'{"a": "warm"}')


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="{}|.[]()'\"-_ 0123456789abcdefghijklmnopqrstuvwxyz", max_size=50), st.binary(max_size=40))
def test_any_template_compiles_or_is_refused_and_renders_or_is_refused(source: str, payload: bytes) -> None:
    try:
        template = compile_template(source)
    except TemplateError:
        return
    if template is not None:
        with contextlib.suppress(TemplateError):
            template.render(payload)
