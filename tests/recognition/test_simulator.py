"""The household simulator is seeded, ordered and covers the scenes."""

from __future__ import annotations

from qilu_hub.recognition.datasets import Dataset
from qilu_hub.recognition.features import DEFAULT_SPEC
from qilu_hub.recognition.mapping import SCENES
from qilu_hub.recognition.simulator import SimConfig, simulate


def test_seeded_and_deterministic() -> None:
    a, b = simulate(SimConfig(days=2, homes=1, seed=7)), simulate(SimConfig(days=2, homes=1, seed=7))
    assert a.events == b.events and a.intervals == b.intervals
    assert simulate(SimConfig(days=2, homes=1, seed=8)).events != a.events


def test_events_sorted_and_on_spec_channels(sim_dataset: Dataset) -> None:
    ts = [e.ts for e in sim_dataset.events]
    assert ts == sorted(ts)
    assert all((e.area, e.capability) in DEFAULT_SPEC.channels for e in sim_dataset.events)


def test_covers_the_household_scenes() -> None:
    ds = simulate(SimConfig(days=14, homes=2, seed=1))
    labels = set(ds.labels_at(ds.slices(DEFAULT_SPEC), DEFAULT_SPEC))
    assert labels == set(SCENES)
