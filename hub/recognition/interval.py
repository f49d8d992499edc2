"""A labelled stretch of time (start, end, scene), shared by datasets, training and the household label store.

Kept apart from ``datasets`` so the label store, which every running hub has, does not import numpy with it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Interval:
    start: float
    end: float
    label: str
