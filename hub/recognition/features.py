"""Feature extraction for scene recognition, shared by training and the runtime.

Features are built from the hub's common device model -- (area, capability) channels -- never from raw
sensor ids, so that a model trained in one home can run in another.  The same ``FeatureExtractor`` is
fed events one at a time both by the training pipeline (over recorded or simulated history) and by the
runtime component (live state changes); that is what guarantees train/run parity.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo

import numpy as np

# Bump when the *code* that turns events into numbers changes meaning; the spec hash covers the data.
FEATURE_CODE_VERSION = "2"  # 2: activations counted per source transition

AREAS: tuple[str, ...] = (
    "hall",
    "kitchen",
    "dining_room",
    "living_room",
    "bedroom",
    "bathroom",
    "toilet",
    "laundry",
    "office",
    "other",
)
CAPABILITIES: tuple[str, ...] = ("motion", "door", "contact", "power", "water", "media", "light")

_DAY = 86400.0
_WEEK = 7 * _DAY


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """One state change of a channel, already mapped to the common device model."""

    ts: float  # epoch seconds
    area: str
    capability: str
    active: bool  # on/open/drawing power/flowing
    source: str = ""  # the device/entity behind it: several sources can share one channel


@dataclass(frozen=True)
class FeatureSpec:
    """What a feature vector means.  Its ``version`` is embedded in every model trained with it."""

    areas: tuple[str, ...] = AREAS
    capabilities: tuple[str, ...] = CAPABILITIES
    slice_seconds: float = 60.0
    count_windows: tuple[float, ...] = (600.0, 3600.0)
    recency_cap: float = _DAY
    name: str = "qilu-scene-features"
    # Optional per-device block (home-specific source ids, e.g. entity ids): which device fired last and
    # how recently, even when several devices share one (area, capability) channel.  Empty for models
    # meant to transfer between homes; set by training on a home's own data (``--per-device``).
    sources: tuple[str, ...] = ()

    @property
    def channels(self) -> tuple[tuple[str, str], ...]:
        return tuple((a, c) for a in self.areas for c in self.capabilities)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "code_version": FEATURE_CODE_VERSION,
            "areas": list(self.areas),
            "capabilities": list(self.capabilities),
            "slice_seconds": self.slice_seconds,
            "count_windows": list(self.count_windows),
            "recency_cap": self.recency_cap,
        } | ({"sources": list(self.sources)} if self.sources else {})  # absent when empty: same hash as before

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FeatureSpec:
        def _strs(key: str) -> tuple[str, ...]:
            value = data[key]
            assert isinstance(value, list)
            return tuple(str(v) for v in value)

        windows = data["count_windows"]
        assert isinstance(windows, list)
        return cls(
            areas=_strs("areas"),
            capabilities=_strs("capabilities"),
            slice_seconds=float(str(data["slice_seconds"])),
            count_windows=tuple(float(w) for w in windows),
            recency_cap=float(str(data["recency_cap"])),
            name=str(data["name"]),
            sources=_strs("sources") if "sources" in data else (),
        )

    def with_sources(self, sources: Iterable[str]) -> FeatureSpec:
        return replace(self, sources=tuple(sorted(set(sources))))

    def without_sources(self) -> FeatureSpec:
        return replace(self, sources=())

    @property
    def version(self) -> str:
        # A content hash: any change in areas, windows or code version yields a different string.
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return f"{self.name}/{FEATURE_CODE_VERSION}+{hashlib.sha1(blob).hexdigest()[:10]}"

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for a, c in self.channels:
            base = f"{a}.{c}"
            names += [f"{base}.active", f"{base}.changed", f"{base}.last_fired", f"{base}.recency"]
            names += [f"{base}.count_{int(w)}s" for w in self.count_windows]
        names += [f"{a}.recency" for a in self.areas]
        names += ["any.recency", "time.sin", "time.cos", "weekday.sin", "weekday.cos"]
        for src in self.sources:
            base = f"device.{src}"
            names += [f"{base}.active", f"{base}.changed", f"{base}.last_fired", f"{base}.recency"]
            names += [f"{base}.count_{int(w)}s" for w in self.count_windows]
        return names

    @property
    def n_features(self) -> int:
        return len(self.feature_names)


DEFAULT_SPEC = FeatureSpec()


@dataclass
class FeatureExtractor:
    """Streaming extractor: ``observe`` events in time order, ask ``features(now)`` at any time."""

    spec: FeatureSpec = DEFAULT_SPEC
    tz: tzinfo = UTC
    _index: dict[tuple[str, str], int] = field(init=False)
    _area_index: dict[str, int] = field(init=False)
    _active: np.ndarray = field(init=False)
    _last_change: np.ndarray = field(init=False)
    _area_last: np.ndarray = field(init=False)
    _on_times: list[deque[float]] = field(init=False)
    _sources_on: list[set[str]] = field(init=False)
    _last_fired: int = field(init=False, default=-1)
    _last_any: float = field(init=False, default=-math.inf)
    _source_index: dict[str, int] = field(init=False)
    _src_active: np.ndarray = field(init=False)
    _src_last_change: np.ndarray = field(init=False)
    _src_on_times: list[deque[float]] = field(init=False)
    _src_last_fired: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        self._index = {ch: i for i, ch in enumerate(self.spec.channels)}
        self._area_index = {a: i for i, a in enumerate(self.spec.areas)}
        n = len(self._index)
        self._active = np.zeros(n, dtype=np.float32)
        self._last_change = np.full(n, -math.inf)
        self._area_last = np.full(len(self.spec.areas), -math.inf)
        self._on_times = [deque() for _ in range(n)]
        self._sources_on = [set() for _ in range(n)]
        self._source_index = {src: i for i, src in enumerate(self.spec.sources)}
        m = len(self._source_index)
        self._src_active = np.zeros(m, dtype=np.float32)
        self._src_last_change = np.full(m, -math.inf)
        self._src_on_times = [deque() for _ in range(m)]

    def channel_of(self, area: str | None, capability: str) -> int | None:
        """Index of the channel, folding unknown areas into ``other``; None for unknown capabilities."""
        if capability not in self.spec.capabilities:
            return None
        if area not in self._area_index:
            area = "other" if "other" in self._area_index else None
        if area is None:
            return None
        return self._index[(area, capability)]

    def observe(self, event: DeviceEvent) -> bool:
        """Feed one event; True when it was a transition (off->on or on->off) of a source on a spec channel.

        Only transitions count: a power meter reporting 80 W then 85 W is one activation, as in training
        data made of on/off intervals.  A channel is active while any of its sources is.
        """
        i = self.channel_of(event.area, event.capability)
        if i is None:
            return False
        sources = self._sources_on[i]
        if (event.source in sources) == event.active:
            return False
        if event.active:
            sources.add(event.source)
            self._on_times[i].append(event.ts)
        else:
            sources.discard(event.source)
        self._active[i] = 1.0 if sources else 0.0
        self._last_change[i] = event.ts
        area_i = self._area_index[self.spec.channels[i][0]]
        self._area_last[area_i] = event.ts
        self._last_fired = i
        self._last_any = event.ts
        k = self._source_index.get(event.source)
        self._src_last_fired = -1  # a device unknown to a per-device model may have fired last
        if k is not None:  # unknown devices still count in their channel
            self._src_active[k] = 1.0 if event.active else 0.0
            self._src_last_change[k] = event.ts
            self._src_last_fired = k
            if event.active:
                self._src_on_times[k].append(event.ts)
        return True

    def observe_many(self, events: Iterable[DeviceEvent]) -> None:
        for e in events:
            self.observe(e)

    def _recency(self, last: np.ndarray | float, now: float) -> np.ndarray:
        cap = self.spec.recency_cap
        dt = np.clip(now - np.asarray(last, dtype=np.float64), 0.0, cap)
        return (np.log1p(dt) / math.log1p(cap)).astype(np.float32)

    def features(self, now: float) -> np.ndarray:
        """Feature vector describing the window ending at ``now`` (float32, ``spec.n_features``)."""
        spec = self.spec
        longest = max(spec.count_windows) if spec.count_windows else 0.0
        block = self._block(self._active, self._last_change, self._last_fired, self._on_times, now, longest)
        local = datetime.fromtimestamp(now, self.tz)
        day_s = local.hour * 3600 + local.minute * 60 + local.second
        week_s = local.weekday() * _DAY + day_s
        tail = [
            self._recency(self._last_any, now).item(),
            math.sin(2 * math.pi * day_s / _DAY),
            math.cos(2 * math.pi * day_s / _DAY),
            math.sin(2 * math.pi * week_s / _WEEK),
            math.cos(2 * math.pi * week_s / _WEEK),
        ]
        parts = [block.reshape(-1), self._recency(self._area_last, now), np.asarray(tail, dtype=np.float32)]
        if self._source_index:
            args = (self._src_active, self._src_last_change, self._src_last_fired, self._src_on_times)
            parts.append(self._block(*args, now, longest).reshape(-1))
        return np.concatenate(parts).astype(np.float32)

    def _block(
        self, active: np.ndarray, last_change: np.ndarray, last_fired: int, on_times: list[deque[float]],
        now: float, longest: float,
    ) -> np.ndarray:
        """Per-unit (channel or device) features: active, changed, fired last, recency, activation counts."""
        spec = self.spec
        block = np.zeros((len(active), 4 + len(spec.count_windows)), dtype=np.float32)
        block[:, 0] = active
        block[:, 1] = last_change > now - spec.slice_seconds
        if last_fired >= 0:
            block[last_fired, 2] = 1.0
        block[:, 3] = self._recency(last_change, now)
        for i, times in enumerate(on_times):
            while times and times[0] <= now - longest:
                times.popleft()  # bounded memory: only the longest window is kept
            if times:
                for k, w in enumerate(spec.count_windows):
                    block[i, 4 + k] = math.log1p(sum(1 for t in times if t > now - w))
        return block


def slice_times(start: float, end: float, spec: FeatureSpec = DEFAULT_SPEC) -> np.ndarray:
    """End times of consecutive slices covering [start, end)."""
    step = spec.slice_seconds
    count = max(0, math.floor((end - start) / step))
    return start + step * np.arange(1, count + 1, dtype=np.float64)


def extract_windows(
    events: Sequence[DeviceEvent],
    times: Sequence[float] | np.ndarray,
    spec: FeatureSpec = DEFAULT_SPEC,
    tz: tzinfo = UTC,
    wrap: Callable[[Iterable[tuple[int, float]]], Iterable[tuple[int, float]]] | None = None,
) -> np.ndarray:
    """Feature matrix, one row per time in ``times``, using exactly the streaming extractor.

    ``wrap`` may decorate the row iteration (training passes a progress bar).
    """
    extractor = FeatureExtractor(spec, tz)
    ordered = sorted(events, key=lambda e: e.ts)
    rows = np.zeros((len(times), spec.n_features), dtype=np.float32)
    j = 0
    indexed: Iterable[tuple[int, float]] = enumerate(float(t) for t in times)
    for r, t in wrap(indexed) if wrap is not None else indexed:
        while j < len(ordered) and ordered[j].ts <= t:
            extractor.observe(ordered[j])
            j += 1
        rows[r] = extractor.features(t)
    return rows


def day_key(ts: float, tz: tzinfo = UTC) -> str:
    return (datetime.fromtimestamp(ts, tz) - timedelta(seconds=0)).date().isoformat()
