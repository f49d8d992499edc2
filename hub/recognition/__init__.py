"""Local scene recognition: which household situation (sleeping, cooking, away, ...) is going on.

Runtime pieces only import numpy and onnxruntime; training lives in ``qilu_hub.recognition.training`` and needs
the optional ``train`` extra.

The names below load their module on first use (PEP 562): every hub imports ``recognition.settings`` (its
configuration section) and ``recognition.labels`` (the label store, always on), and neither needs numpy
(~18 MiB), which the rest of the package imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .component import ENTITY_ID, EVENT_SCENE_RECOGNIZED, SceneRecognizer
    from .datasets import Dataset, DatasetError, load_casas, load_kasteren, load_recorder_export
    from .decision import ClassBias, ClassBiasError
    from .decoder import DecoderError, HmmFilter
    from .features import DEFAULT_SPEC, DeviceEvent, FeatureExtractor, FeatureSpec, extract_windows
    from .interval import Interval
    from .labels import Label, LabelError, LabelStore
    from .mapping import SCENES, capability_of, normalize_area
    from .metadata import ModelMetadata, ModelMetadataError
    from .runtime import ModelLoadError, Prediction, SceneModel, SpecMismatchError
    from .simulator import SimConfig, simulate
    from .smoothing import SceneSmoother

# public name -> the submodule that defines it
_EXPORTS = {
    "ENTITY_ID": "component", "EVENT_SCENE_RECOGNIZED": "component", "SceneRecognizer": "component",
    "Dataset": "datasets", "DatasetError": "datasets", "load_casas": "datasets", "load_kasteren": "datasets",
    "load_recorder_export": "datasets",
    "ClassBias": "decision", "ClassBiasError": "decision",
    "DecoderError": "decoder", "HmmFilter": "decoder",
    "DEFAULT_SPEC": "features", "DeviceEvent": "features", "FeatureExtractor": "features", "FeatureSpec": "features",
    "extract_windows": "features",
    "Interval": "interval",
    "Label": "labels", "LabelError": "labels", "LabelStore": "labels",
    "SCENES": "mapping", "capability_of": "mapping", "normalize_area": "mapping",
    "ModelMetadata": "metadata", "ModelMetadataError": "metadata",
    "ModelLoadError": "runtime", "Prediction": "runtime", "SceneModel": "runtime", "SpecMismatchError": "runtime",
    "SimConfig": "simulator", "simulate": "simulator",
    "SceneSmoother": "smoothing",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "DEFAULT_SPEC",
    "ENTITY_ID",
    "EVENT_SCENE_RECOGNIZED",
    "SCENES",
    "ClassBias",
    "ClassBiasError",
    "Dataset",
    "DatasetError",
    "DecoderError",
    "DeviceEvent",
    "FeatureExtractor",
    "FeatureSpec",
    "HmmFilter",
    "Interval",
    "Label",
    "LabelError",
    "LabelStore",
    "ModelLoadError",
    "ModelMetadata",
    "ModelMetadataError",
    "Prediction",
    "SceneModel",
    "SceneRecognizer",
    "SceneSmoother",
    "SimConfig",
    "SpecMismatchError",
    "capability_of",
    "extract_windows",
    "load_casas",
    "load_kasteren",
    "load_recorder_export",
    "normalize_area",
    "simulate",
]
