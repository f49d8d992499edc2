"""QOAP description checks on hostile descriptions: a list of errors, never an exception."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from qilu_hub.drivers.qoap.driver import descriptions_from
from qilu_hub.drivers.qoap.profile import description_errors


def test_non_text_capability_is_an_error_not_a_crash() -> None:
    # found by fuzz/targets/qoap.py: a dict among the capabilities raised TypeError (unhashable)
    errors = description_errors({"entities": [{"key": "i", "name": "x", "capabilities": ["power", {}, 7]}]})
    assert any("unknown capabilities" in e for e in errors)


_JSON: Any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.sampled_from(
        ["power", "brightness", "on_off", "temperature", "x", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["entities", "key", "name", "capabilities", "device", "profile", "id", "attributes"]),
        inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(_JSON)
def test_any_json_gives_errors_or_a_buildable_description(description: Any) -> None:
    errors = description_errors(description)
    assert isinstance(errors, list)
    if not errors:
        descriptions_from(description)
