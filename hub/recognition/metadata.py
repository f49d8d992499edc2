"""The metadata every scene model carries inside its ONNX file (``metadata_props``).

Kept separate from training and runtime so both sides read and write exactly the same keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

PREFIX = "qilu."
KEYS = (
    "labels", "feature_spec_version", "feature_spec", "window_seconds", "importances", "extra", "decoder", "class_bias",
    "lookahead",
)


class ModelMetadataError(ValueError):
    """The model file lacks or garbles the metadata the runtime needs."""


@dataclass(frozen=True)
class ModelMetadata:
    labels: list[str]
    spec_version: str
    spec: dict[str, object]
    window_seconds: float
    importances: list[float] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    # Optional temporal decoder parameters (``decoder.HmmFilter.to_dict``); empty when the model has none.
    decoder: dict[str, object] = field(default_factory=dict)
    # Optional per-class decision offsets (``decision.ClassBias.to_dict``); empty when the model has none.
    class_bias: dict[str, object] = field(default_factory=dict)
    # True for a day-review model: its input also holds ``lookahead`` features (what happens after each
    # window), so it can label finished stretches of time but never run live.
    lookahead: bool = False

    def to_props(self) -> dict[str, str]:
        props = {
            PREFIX + "labels": json.dumps(self.labels),
            PREFIX + "feature_spec_version": self.spec_version,
            PREFIX + "feature_spec": json.dumps(self.spec, sort_keys=True),
            PREFIX + "window_seconds": repr(float(self.window_seconds)),
            PREFIX + "importances": json.dumps(self.importances),
            PREFIX + "extra": json.dumps(self.extra, sort_keys=True),
        }
        if self.decoder:
            props[PREFIX + "decoder"] = json.dumps(self.decoder, sort_keys=True)
        if self.class_bias:
            props[PREFIX + "class_bias"] = json.dumps(self.class_bias, sort_keys=True)
        if self.lookahead:
            props[PREFIX + "lookahead"] = "true"
        return props

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelMetadata:
        missing = [k for k in KEYS[:4] if PREFIX + k not in props]
        if missing:
            raise ModelMetadataError(f"model metadata lacks {', '.join(PREFIX + k for k in missing)}")
        try:
            labels = json.loads(props[PREFIX + "labels"])
            spec = json.loads(props[PREFIX + "feature_spec"])
            window = float(props[PREFIX + "window_seconds"])
            importances = json.loads(props.get(PREFIX + "importances", "[]"))
            extra = json.loads(props.get(PREFIX + "extra", "{}"))
            decoder = json.loads(props.get(PREFIX + "decoder", "{}"))
            class_bias = json.loads(props.get(PREFIX + "class_bias", "{}"))
            lookahead = json.loads(props.get(PREFIX + "lookahead", "false"))
        except (ValueError, TypeError) as exc:
            raise ModelMetadataError(f"model metadata is not valid: {exc}") from exc
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise ModelMetadataError("model metadata 'labels' must be a non-empty list of strings")
        if not isinstance(spec, dict):
            raise ModelMetadataError("model metadata 'feature_spec' must be an object")
        if not isinstance(decoder, dict):
            raise ModelMetadataError("model metadata 'decoder' must be an object")
        if not isinstance(class_bias, dict):
            raise ModelMetadataError("model metadata 'class_bias' must be an object")
        if not isinstance(lookahead, bool):
            raise ModelMetadataError("model metadata 'lookahead' must be true or false")
        return cls(
            labels=labels,
            spec_version=props[PREFIX + "feature_spec_version"],
            spec=spec,
            window_seconds=window,
            importances=[float(v) for v in importances],
            extra={str(k): str(v) for k, v in dict(extra).items()},
            decoder=decoder,
            class_bias=class_bias,
            lookahead=lookahead,
        )
