"""Scene YAML with line numbers: hostile text is refused with SceneError, never another exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qilu_hub.scenes.loader import SceneError, parse_scene_text


@pytest.mark.parametrize("text", ["? -\n", "? ?\n", "- ? -  -\n", "?\n- w:\n"])
def test_collection_as_mapping_key_is_a_scene_error(text: str) -> None:
    # found by fuzz/targets/scenes.py: a list or mapping used as a key raised TypeError (unhashable)
    with pytest.raises(SceneError) as info:
        parse_scene_text(text)
    assert all(issue.line >= 1 for issue in info.value.issues)


_YAMLISH = st.text(alphabet="?-:[]{}!&*|> \n\tabc01#'\"", max_size=60)


@settings(max_examples=300, deadline=None)
@given(_YAMLISH)
def test_any_text_is_a_scene_or_a_scene_error(text: str) -> None:
    try:
        parse_scene_text(text)
    except SceneError as err:
        assert err.issues
