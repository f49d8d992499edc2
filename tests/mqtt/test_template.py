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


@pytest.mark.parametrize(("source", "payload", "expected"), [
    ("{% if value_json.a %}ON{% else %}OFF{% endif %}", b'{"a": 1}', "ON"),
    ("{{ value_json.a * 10 }}", b'{"a": 2.5}', 25.0),
    ("{{ value_json.a | tojson }}", b'{"a": {"b": [1]}}', '{"b": [1]}'),
    ("{{ value_json.a }} and {{ value_json.b }}", b'{"a": 1, "b": 2}', "1 and 2"),
    ("{{ (value | float / 1000) | round(2) }}", b"12345", 12.35),
    ("{{ 'on' if value == '1' else 'off' }}", b"1", "on"),
    ("{{ value_json.missing | default('n/a') }}", b"{}", "n/a"),
])
def test_jinja_forms_render_as_home_assistant_does(source: str, payload: bytes, expected: object) -> None:
    """The same jinja2 engine as render_template: conditions, arithmetic and filters work, not just paths."""
    template = compile_template(source)
    assert template is not None
    assert template.render(payload) == expected


@pytest.mark.parametrize("source", [
    "{{ states('sensor.x') }}",  # hub functions are not for device payloads
    "{{ now() }}",
    "value_json.a",  # no expression: it would ignore the payload
    "{{ value_json.a[ }}",
    "{{ value_json.a | no_such_filter }}",
    "{% for x in value_json recursive %}{{ loop(x) }}{% endfor %}",  # the budget could not reach its calls
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


@pytest.mark.parametrize("source", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ 'x' * 10 ** 9 }}",
    "{{ 2 ** 99999999 }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ ('x' * 50000) | replace('x', 'y' * 50000) }}",
    "{{ (['x' * 50000] * 50000) | join }}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{% for i in range(100000) %}{{ range(100000) | list | length }}{% endfor %}",
])
def test_expensive_templates_stop_with_an_error(source: str) -> None:
    """A hostile discovery payload cannot hold the hub: loops have a step budget, sizes are checked first."""
    template = compile_template(source)
    assert template is not None
    with pytest.raises(TemplateError, match=r"too expensive|larger than"):
        template.render(b"1")
