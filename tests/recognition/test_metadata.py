"""Model metadata survives the trip through metadata_props and rejects garbage."""

from __future__ import annotations

import pytest

from hub.recognition.features import DEFAULT_SPEC
from hub.recognition.metadata import ModelMetadata, ModelMetadataError


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
