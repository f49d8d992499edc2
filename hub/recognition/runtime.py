"""Loading and running a scene model with onnxruntime on the CPU.  Imports only numpy and onnxruntime."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .decision import ClassBias, ClassBiasError
from .decoder import DecoderError, HmmFilter
from .features import FeatureSpec
from .lookahead import lookahead_names
from .metadata import ModelMetadata, ModelMetadataError


class ModelLoadError(RuntimeError):
    """The model file is missing, unreadable or not a valid ONNX model."""


class SpecMismatchError(ModelLoadError):
    """The model was trained with a feature spec other than the one the hub extracts."""


class ModelKindError(ModelLoadError):
    """A day-review model where a live one is needed, or the other way round."""


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    probabilities: dict[str, float]


def _session_options() -> object:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # Bounded threads: the hub shares a small machine with drivers and the event loop.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return opts


class SceneModel:
    """An ONNX scene classifier plus the metadata that says how to feed it."""

    def __init__(self, session: object, metadata: ModelMetadata, spec: FeatureSpec, path: str) -> None:
        self._session = session
        self.metadata = metadata
        self.spec = spec
        self.path = path
        inputs = session.get_inputs()  # type: ignore[attr-defined]
        self._input = inputs[0].name
        outputs = [o.name for o in session.get_outputs()]  # type: ignore[attr-defined]
        # skl2onnx classifiers emit (label, probabilities); we only need the probability tensor.
        self._output = "probabilities" if "probabilities" in outputs else outputs[-1]
        self.class_bias = ClassBias.from_dict(dict(metadata.class_bias)) if metadata.class_bias else None

    def new_decoder(self) -> HmmFilter | None:
        """A fresh temporal decoder from the model's metadata, or None when the model carries none."""
        if not self.metadata.decoder:
            return None
        return HmmFilter.from_dict(dict(self.metadata.decoder))

    @property
    def labels(self) -> list[str]:
        return self.metadata.labels

    @property
    def lookahead(self) -> bool:
        """True for a day-review model, whose input also holds what happens after each window."""
        return self.metadata.lookahead

    @property
    def feature_names(self) -> list[str]:
        """The names of the model's input columns, in order."""
        names = list(self.spec.feature_names)
        return names + lookahead_names(self.spec) if self.lookahead else names

    @classmethod
    def load(cls, path: str | Path, spec: FeatureSpec, *, review: bool | None = False) -> SceneModel:
        """Load ``path`` and refuse it unless it was trained for ``spec``, and for live recognition (or, with
        ``review=True``, for day review: trained with look-ahead features; ``review=None`` takes either kind,
        for tools that evaluate whatever they are given).

        A per-device model (``spec`` plus a ``sources`` list, trained on one home's data) is accepted
        too; ``model.spec`` is then the model's own spec, which the caller must extract with.
        """
        p = Path(path)
        if not p.is_file():
            raise ModelLoadError(f"scene model {p} does not exist")
        try:
            import onnxruntime as ort

            session = ort.InferenceSession(str(p), sess_options=_session_options(), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            hint = ""
            if "TreeEnsemble(5)" in str(exc):  # models from this release on use the compact tree operator
                hint = f" (onnxruntime {ort.__version__} predates the TreeEnsemble operator: install 1.21 or later)"
            raise ModelLoadError(f"scene model {p} could not be loaded: {exc}{hint}") from exc
        props = dict(session.get_modelmeta().custom_metadata_map)
        try:
            meta = ModelMetadata.from_props(props)
        except ModelMetadataError as exc:
            raise ModelLoadError(f"scene model {p}: {exc}") from exc
        try:
            own = FeatureSpec.from_dict(meta.spec)
        except (KeyError, TypeError, ValueError, AssertionError):
            own = spec
        if own.sources and own.version == meta.spec_version and own.without_sources().version == spec.version:
            spec = own
        if meta.spec_version != spec.version:
            raise SpecMismatchError(
                f"scene model {p} was trained for feature spec {meta.spec_version!r} but this hub extracts "
                f"{spec.version!r}; retrain it with 'qilu-hub model train' or install a matching model"
            )
        if meta.lookahead and review is False:
            raise ModelKindError(
                f"scene model {p} is a day-review model: it reads what happens after each minute, so it cannot "
                "recognise the scene live; configure it as recognition.review_model"
            )
        if review is True and not meta.lookahead:
            raise ModelKindError(
                f"scene model {p} is a live model; day review needs one trained with look-ahead features "
                "('qilu-hub model train --review')"
            )
        width = spec.n_features + (len(lookahead_names(spec)) if meta.lookahead else 0)
        shape = session.get_inputs()[0].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != width):
            raise SpecMismatchError(f"scene model {p} expects input shape {shape}, spec gives {width}")
        try:
            model = cls(session, meta, spec, str(p))
            decoder = model.new_decoder()
        except (DecoderError, ClassBiasError) as exc:
            raise ModelLoadError(f"scene model {p}: {exc}") from exc
        if model.class_bias is not None and model.class_bias.labels != meta.labels:
            raise ModelLoadError(f"scene model {p}: class-bias labels differ from {meta.labels}")
        if decoder is not None and decoder.labels != meta.labels:
            raise ModelLoadError(f"scene model {p}: decoder labels {decoder.labels} differ from {meta.labels}")
        return model

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        result = self._session.run([self._output], {self._input: x})  # type: ignore[attr-defined]
        proba = np.asarray(result[0], dtype=np.float64)
        return self.class_bias.apply(proba) if self.class_bias is not None else proba

    def decode(self, proba: np.ndarray, days: np.ndarray | None = None) -> np.ndarray:
        """Consecutive windows' probabilities run through the model's decoder as the hub runs it live, restarted
        for each value of ``days`` when given; returned as they are for a model without a decoder."""
        decoder = self.new_decoder()
        if decoder is None:
            return proba
        if days is None:
            return decoder.filter(proba)
        out = np.array(proba, dtype=np.float64)
        groups = np.asarray(days)
        for day in dict.fromkeys(groups.tolist()):
            rows = groups == day
            out[rows] = decoder.filter(out[rows])
        return out

    def predict(self, features: np.ndarray) -> Prediction:
        return self.prediction(self.predict_proba(features)[0])

    def prediction(self, probs: np.ndarray) -> Prediction:
        """The most probable label of one window's probabilities, with the table rounded for display."""
        best = int(np.argmax(probs))
        table = {c: round(float(v), 4) for c, v in zip(self.labels, probs, strict=True)}
        return Prediction(self.labels[best], float(probs[best]), table)

    def drivers(self, features: np.ndarray, top: int = 5) -> dict[str, float]:
        """Features that most drove the result: global importance times the feature's current value."""
        imp = np.asarray(self.metadata.importances, dtype=np.float64)
        x = np.asarray(features, dtype=np.float64).reshape(-1)
        if imp.shape != x.shape:
            return {}
        score = imp * np.abs(x)
        names = self.feature_names
        order = np.argsort(-score)[:top]
        return {names[i]: round(float(x[i]), 3) for i in order if score[i] > 0}
