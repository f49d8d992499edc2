"""Local scene recognition: which household situation (sleeping, cooking, away, ...) is going on.

Runtime pieces only import numpy and onnxruntime; training lives in ``qilu_hub.recognition.training`` and needs
the optional ``train`` extra.
"""

from .component import ENTITY_ID, EVENT_SCENE_RECOGNIZED, SceneRecognizer
from .datasets import Dataset, DatasetError, Interval, load_casas, load_kasteren, load_recorder_export
from .decision import ClassBias, ClassBiasError
from .decoder import DecoderError, HmmFilter
from .features import DEFAULT_SPEC, DeviceEvent, FeatureExtractor, FeatureSpec, extract_windows
from .labels import Label, LabelError, LabelStore
from .mapping import SCENES, capability_of, normalize_area
from .metadata import ModelMetadata, ModelMetadataError
from .runtime import ModelLoadError, Prediction, SceneModel, SpecMismatchError
from .simulator import SimConfig, simulate
from .smoothing import SceneSmoother

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
