"""Model metadata survives the trip through metadata_props and rejects garbage."""

from __future__ import annotations

import pytest

from qilu_hub.recognition.features import DEFAULT_SPEC
from qilu_hub.recognition.metadata import ModelMetadata, ModelMetadataError


def test_round_trip() -> None:
    meta = ModelMetadata(["a", "b"], DEFAULT_SPEC.version, DEFAULT_SPEC.to_dict(), 60.0, [0.5, 0.5], {"k": "v"})
    assert ModelMetadata.from_props(meta.to_props()) == meta


def test_missing_and_invalid() -> None:
    with pytest.raises(ModelMetadataError, match="lacks"):
        ModelMetadata.from_props({})
    props = ModelMetadata(["a"], "v", {}, 60.0).to_props()
    props["qilu.labels"] = "[]"
    with pytest.raises(ModelMetadataError, match="labels"):
        ModelMetadata.from_props(props)
    props["qilu.labels"] = "{oops"
    with pytest.raises(ModelMetadataError):
        ModelMetadata.from_props(props)


def test_class_bias_round_trip_and_absent_by_default() -> None:
    bias = {"kind": "class-bias", "labels": ["a", "b"], "offsets": [0.5, -0.25]}
    meta = ModelMetadata(["a", "b"], "v", {}, 60.0, class_bias=bias)
    props = meta.to_props()
    assert "qilu.class_bias" in props
    assert ModelMetadata.from_props(props).class_bias == bias
    assert "qilu.class_bias" not in ModelMetadata(["a"], "v", {}, 60.0).to_props()
    props["qilu.class_bias"] = "[1, 2]"
    with pytest.raises(ModelMetadataError, match="class_bias"):
        ModelMetadata.from_props(props)


def test_lookahead_flag_round_trip_and_absent_for_live_models() -> None:
    live = ModelMetadata(["a"], "v", {}, 60.0)
    assert "qilu.lookahead" not in live.to_props() and not ModelMetadata.from_props(live.to_props()).lookahead
    props = ModelMetadata(["a"], "v", {}, 60.0, lookahead=True).to_props()
    assert ModelMetadata.from_props(props).lookahead is True
    props["qilu.lookahead"] = '"yes"'
    with pytest.raises(ModelMetadataError, match="lookahead"):
        ModelMetadata.from_props(props)
