"""Temporal smoothing with hysteresis, so the exposed scene does not flicker between neighbours."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SceneSmoother:
    """Exponential moving average of class probabilities plus a switching rule.

    The current scene changes only when another scene's smoothed probability beats it by ``margin`` on
    ``dwell`` consecutive updates.  One noisy window therefore never changes the scene.
    """

    alpha: float = 0.5  # weight of the newest probabilities
    margin: float = 0.1
    dwell: int = 2
    current: str | None = None
    _avg: dict[str, float] = field(default_factory=dict)
    _challenger: str | None = None
    _streak: int = 0

    @property
    def probabilities(self) -> dict[str, float]:
        return dict(self._avg)

    def update(self, probabilities: dict[str, float]) -> str:
        if not self._avg:
            self._avg = dict(probabilities)
        else:
            self._avg = {
                k: (1 - self.alpha) * self._avg.get(k, 0.0) + self.alpha * v for k, v in probabilities.items()
            }
        best = max(self._avg, key=lambda k: self._avg[k])
        if self.current is None:
            self.current = best
            return best
        if best == self.current or self._avg[best] - self._avg.get(self.current, 0.0) < self.margin:
            self._challenger, self._streak = None, 0
            return self.current
        if best == self._challenger:
            self._streak += 1
        else:
            self._challenger, self._streak = best, 1
        if self._streak >= self.dwell:
            self.current, self._challenger, self._streak = best, None, 0
        return self.current

    @property
    def confidence(self) -> float:
        return self._avg.get(self.current, 0.0) if self.current else 0.0

    def reset(self) -> None:
        self.current, self._avg, self._challenger, self._streak = None, {}, None, 0
