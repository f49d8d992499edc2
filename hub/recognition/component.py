"""The hub component: feeds live state changes to the extractor, runs the model, exposes the scene."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..const import EVENT_SCENE_RECOGNIZED
from .decoder import HmmFilter
from .features import DEFAULT_SPEC, DeviceEvent, FeatureExtractor, FeatureSpec
from .mapping import entity_channel, is_active
from .runtime import ModelLoadError, Prediction, SceneModel
from .smoothing import SceneSmoother

if TYPE_CHECKING:
    from qilu_hub import Hub

    from .review import Segment

_LOGGER = logging.getLogger(__name__)

ENTITY_ID = "sensor.household_scene"
# Not a registry entity, so the presentation does not name it: named here, as Home Assistant clients expect.
FRIENDLY_NAME = "Household scene"
EVENT_MODEL_LOADED = "scene_model_loaded"
MODEL_PROBLEM = "recognition:model"  # its id in the hub's problem list (hub.problems) while the model file is unusable
DEFAULT_MODEL = Path(str(resources.files("qilu_hub.models") / "household_scene.onnx"))
# History is read in pages of this many rows and reduced to state changes page by page, so a review of a
# busy home (power meters reporting every few seconds) never holds more than one page of rows.
REVIEW_PAGE_ROWS = 20_000


class ReviewError(Exception):
    """A day review that cannot run; ``code`` is an API error code (invalid_format, unavailable)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


class SceneRecognizer:
    """Recognises the household scene on a schedule and soon after relevant events.

    A missing or broken model does not stop the hub: the entity reports ``unavailable`` with the reason.
    """

    name = "scene_recognition"

    def __init__(
        self,
        model_path: str | Path = DEFAULT_MODEL,
        spec: FeatureSpec = DEFAULT_SPEC,
        *,
        interval: float | None = None,
        debounce: float = 2.0,
        smoother: SceneSmoother | None = None,
        tz: tzinfo | None = None,
        clock: Callable[[], float] = time.time,
        review_model_path: str | Path | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        # A day-review model (look-ahead features); without one, reviews run the live model over history.
        self.review_model_path = Path(review_model_path) if review_model_path is not None else None
        self._review_model: tuple[tuple[int, int] | None, SceneModel] | None = None
        self._review_lock = asyncio.Lock()
        self.spec_requested = spec
        self.spec = spec
        self.interval = interval if interval is not None else spec.slice_seconds
        self.debounce = debounce
        self.smoother = smoother or SceneSmoother()
        self.tz = tz or datetime.now().astimezone().tzinfo
        self.clock = clock
        self.extractor = FeatureExtractor(spec, self.tz)  # type: ignore[arg-type]
        self.model: SceneModel | None = None
        self.error: str | None = None
        self.last: Prediction | None = None
        self._hub: Hub | None = None
        self._unsub: Callable[[], None] | None = None
        self._wake = asyncio.Event()
        self._channels: dict[str, tuple[str, str] | None] = {}
        self.decoder: HmmFilter | None = None
        self._decoded_at: float | None = None  # end of the last window the decoder committed
        self._stamp: tuple[int, int] | None = None  # (mtime, size) of the model file when last loaded

    async def async_start(self, hub: Hub) -> None:
        self._hub = hub
        self._load_model_file()
        from qilu_hub import EVENT_STATE_CHANGED

        self._seed_from_states()
        self._unsub = hub.bus.listen(EVENT_STATE_CHANGED, self._on_state_changed)
        hub.supervisor.spawn(self.name, self._loop)

    # -- the model file -----------------------------------------------------------------
    def _file_stamp(self, path: Path | None = None) -> tuple[int, int] | None:
        """(mtime, size) of ``path`` (default: the live model's file), or None when it cannot be read."""
        try:
            st = (path or self.model_path).stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _load_model_file(self) -> bool:
        """Load ``model_path``. On failure keep the model in use (if any) and say why on the entity."""
        assert self._hub is not None
        self._stamp = self._file_stamp()
        try:
            model = SceneModel.load(self.model_path, self.spec_requested)
        except ModelLoadError as exc:
            self.error = str(exc)
            if self.model is None:  # the hub keeps running; the reason is on the entity and in the log
                _LOGGER.error("Scene recognition disabled: %s", exc)
                attributes = {"friendly_name": FRIENDLY_NAME, "error": self.error, "model": str(self.model_path)}
                self._hub.states.async_set(ENTITY_ID, "unavailable", attributes)
                told = f"scene recognition is off: {exc}"
            else:
                _LOGGER.error("Model file changed but cannot be used; keeping the loaded model: %s", exc)
                told = f"the model file cannot be used (the loaded model keeps working): {exc}"
            self._hub.problems.report(MODEL_PROBLEM, "recognition", told, file=str(self.model_path))
            return False
        self._hub.problems.clear(MODEL_PROBLEM)
        replacing = self.model is not None
        self.model, self.error = model, None
        if model.spec != self.spec:  # a per-device model: extract its device block too
            self.spec = model.spec
            self.extractor = FeatureExtractor(self.spec, self.tz)  # type: ignore[arg-type]
            self._channels.clear()
            if replacing:
                self._seed_from_states()
        self.decoder = model.new_decoder()
        self._decoded_at = None
        self.smoother.reset()  # its running average is over the old model's labels
        if replacing:
            _LOGGER.info("Scene model reloaded from %s (%d labels)", self.model_path, len(model.labels))
            self._hub.bus.fire(EVENT_MODEL_LOADED, {"model": str(self.model_path), "labels": list(model.labels)})
        return True

    def check_model_file(self) -> bool:
        """Reload the model when its file changed (a retrained model written over it); True if reloaded.

        Checked before every scheduled inference: retraining takes effect without a restart, and a model
        that was missing or broken at start is picked up once it is fixed."""
        stamp = self._file_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        return self._load_model_file()

    async def async_stop(self) -> None:
        if self._unsub is not None:
            self._unsub()
            self._unsub = None
        self._wake.set()
        if self._hub is not None:  # no longer watched: a fixed file would not clear it
            self._hub.problems.clear(MODEL_PROBLEM)

    # -- events -------------------------------------------------------------------------
    def channel_for(self, entity_id: str) -> tuple[str, str] | None:
        """(area, capability) of an entity, cached; None when it says nothing about the household."""
        if entity_id in self._channels:
            return self._channels[entity_id]
        assert self._hub is not None
        entity = self._hub.entities.get(entity_id)
        channel = None
        if entity is not None:
            area, caps = self._hub.area_of(entity_id), tuple(entity.capabilities)
            channel = entity_channel(entity.domain, caps, entity.device_class, area, self.spec.areas)
        self._channels[entity_id] = channel
        return channel

    def _seed_from_states(self) -> None:
        """Start from what is on right now (a TV already playing), not from an empty house."""
        assert self._hub is not None
        for state in sorted(self._hub.states, key=lambda st: st.last_changed):
            channel = None if state.entity_id == ENTITY_ID else self.channel_for(state.entity_id)
            if channel is not None:
                area, cap = channel
                active = is_active(cap, state.value)
                self.extractor.observe(DeviceEvent(state.last_changed, area, cap, active, state.entity_id))

    def _on_state_changed(self, event: Any) -> None:
        data = event.data
        entity_id = data["entity_id"]
        new = data.get("new_state")
        if entity_id == ENTITY_ID or new is None:
            return
        channel = self.channel_for(entity_id)
        if channel is None:
            return
        area, cap = channel
        event_ = DeviceEvent(new.last_updated, area, cap, is_active(cap, new.value), entity_id)
        if self.extractor.observe(event_):
            self._wake.set()  # relevant event: infer soon rather than at the next tick

    # -- inference ----------------------------------------------------------------------
    async def _loop(self) -> None:
        while self._unsub is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            if self._unsub is None:
                return
            await asyncio.sleep(self.debounce)  # let a burst of events land before one inference
            self._wake.clear()
            self.check_model_file()
            self.infer()

    def infer(self, now: float | None = None) -> Prediction | None:
        """Run the model on the window ending now, smooth, and publish."""
        if self.model is None or self._hub is None:
            return None
        at = self.clock() if now is None else now
        features = self.extractor.features(at)
        proba = self.model.predict_proba(features)[0]
        raw = self.model.prediction(proba)
        probabilities = self._decode(proba, at)
        previous = self.smoother.current
        label = self.smoother.update(probabilities)
        smoothed = self.smoother.probabilities
        self.last = Prediction(label, round(self.smoother.confidence, 4), {k: round(v, 4) for k, v in smoothed.items()})
        attributes = {
            "friendly_name": FRIENDLY_NAME,
            "confidence": self.last.confidence,
            "probabilities": self.last.probabilities,
            "raw_label": raw.label,
            "drivers": self.model.drivers(features),
            "model": self.model.path,
            "feature_spec": self.spec.version,
        }
        self._hub.states.async_set(ENTITY_ID, label, attributes)
        if label != previous:
            self._hub.bus.fire(
                EVENT_SCENE_RECOGNIZED,
                {"label": label, "confidence": self.last.confidence, "probabilities": self.last.probabilities},
            )
        return self.last

    def _decode(self, proba: np.ndarray, now: float) -> dict[str, float]:
        """Filter the model's probabilities (one per ``model.labels``) through its HMM decoder, if it has one.

        Its transitions are per window, so it commits one step per elapsed window; inferences in between
        (soon after an event) preview the next step without committing it.  It reads the probabilities as
        the model gave them, never rounded: a channel-HMM model's likelihood ratios live in the small ones.
        """
        assert self.model is not None
        if self.decoder is None:
            return {label: float(p) for label, p in zip(self.model.labels, proba, strict=True)}
        vector = np.asarray(proba, dtype=np.float64)  # the decoder's labels are the model's (checked on load)
        window = self.spec.slice_seconds
        if self._decoded_at is None:
            posterior, self._decoded_at = self.decoder.update(vector), now
        else:
            steps = int((now - self._decoded_at) // window)
            if steps >= 1:
                posterior = self.decoder.update(vector, steps=steps)
                self._decoded_at += steps * window
            else:
                posterior = self.decoder.update(vector, commit=False)
        return {label: float(p) for label, p in zip(self.decoder.labels, posterior, strict=True)}

    # -- day review -----------------------------------------------------------------------
    async def _history_events(
        self, recorder: Any, entity_ids: list[str], since: float, until: float
    ) -> list[DeviceEvent]:
        """State changes of ``entity_ids`` in [since, until], read page by page (see ``REVIEW_PAGE_ROWS``)."""
        from .datasets import events_from_history

        events: list[DeviceEvent] = []
        last_active: dict[str, bool] = {}
        page_start = since
        while True:
            rows = await recorder.async_history(page_start, until, entity_ids, limit=REVIEW_PAGE_ROWS)
            events += events_from_history(rows, self.channel_for, last_active)
            if len(rows) < REVIEW_PAGE_ROWS:
                return events
            # The next page starts at this page's last time; rows at that instant come again, and
            # events_from_history drops them as repeats of a state it has already seen.
            last = float(rows[-1]["last_updated"])
            if last <= page_start:
                raise ReviewError("invalid_format", f"more than {REVIEW_PAGE_ROWS} recorded changes at one instant")
            page_start = last

    def review_model(self) -> SceneModel:
        """The model reviews use: the configured day-review model (reloaded when its file changes), else
        the live one. Raises :class:`ReviewError` when neither can be used."""
        if self.review_model_path is None:
            if self.model is None:
                raise ReviewError("unavailable", f"no scene model is loaded: {self.error or 'not started'}")
            return self.model
        stamp = self._file_stamp(self.review_model_path)
        if self._review_model is not None and self._review_model[0] == stamp:
            return self._review_model[1]
        try:
            model = SceneModel.load(self.review_model_path, self.spec_requested, review=True)
        except ModelLoadError as exc:
            raise ReviewError("unavailable", str(exc)) from None
        self._review_model = (stamp, model)
        return model

    async def async_review(self, start: float, end: float, min_seconds: float = 0.0) -> dict[str, Any]:
        """Segments for [start, end) from the recorder's history; see ``review.review``.

        Reads a day of history either side so every feature is exact, and runs feature extraction and
        the model in a worker thread, one review at a time, so the event loop and live recognition go on."""
        from .review import MAX_REVIEW_SECONDS, margin, review

        if self._hub is None:
            raise ReviewError("unavailable", "scene recognition is not running")
        recorder = self._hub.recorder
        if recorder is None:
            raise ReviewError("unavailable", "the hub's recorder is disabled, so there is no history to review")
        if not end > start:
            raise ReviewError("invalid_format", "end must be after start", "end")
        if end - start > MAX_REVIEW_SECONDS:
            raise ReviewError("invalid_format", f"at most {MAX_REVIEW_SECONDS / 86400:.0f} days at once", "end")
        now = self.clock()
        if start > now - self.spec.slice_seconds:
            raise ReviewError("invalid_format", "start is in the future: nothing has happened yet to review", "start")
        end = min(end, now)  # today so far; the future has no events to read
        model = self.review_model()
        pad = margin(model)
        wanted = [e.entity_id for e in self._hub.entities.all() if self.channel_for(e.entity_id) is not None]
        async with self._review_lock:
            events = await self._history_events(recorder, wanted, start - pad, end + pad) if wanted else []
            tz: tzinfo = self.tz if self.tz is not None else UTC
            loop = asyncio.get_running_loop()
            found: list[Segment] = await loop.run_in_executor(None, review, model, events, start, end, tz, min_seconds)
        return {
            "start": start,
            "end": end,
            "model": model.path,
            "lookahead": model.lookahead,
            "events": len(events),
            "segments": [seg.to_dict() for seg in found],
        }
