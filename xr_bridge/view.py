"""Hub state -> what each panel shows (a small hashable view model), and the diff that decides redraws."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qilu_hub.scenes.model import Control, Panel

ON_VALUES = frozenset({"on", "open", "playing", "home", "heat", "cool", True})


@dataclass(frozen=True)
class EntityState:
    value: Any
    attributes: Mapping[str, Any]

    @staticmethod
    def from_stream(d: Mapping[str, Any]) -> EntityState:
        return EntityState(d.get("v"), dict(d.get("a") or {}))


@dataclass(frozen=True)
class ControlView:
    kind: str
    label: str
    text: str
    on: bool | None = None
    fraction: float | None = None
    status: str = "ok"  # ok | unavailable | pending | error
    hovered: bool = False


@dataclass(frozen=True)
class PanelView:
    title: str
    controls: tuple[ControlView, ...]
    offline: bool = False
    message: str = ""


def _control_view(c: Control, st: EntityState | None, pending: bool, error: str | None, hovered: bool) -> ControlView:
    label = c.label or c.entity_id
    if st is None or st.value in (None, "unavailable", "unknown"):
        return ControlView(c.type, label, "unavailable", status="unavailable", hovered=hovered)
    status = "error" if error else "pending" if pending else "ok"
    if c.type == "slider":
        raw = st.attributes.get(c.attribute or "", None)
        num = float(raw) if isinstance(raw, int | float) else c.min
        frac = (num - c.min) / (c.max - c.min) if c.max > c.min else 0.0
        return ControlView(c.type, label, error or f"{num:g}", None, min(1.0, max(0.0, frac)), status, hovered)
    if c.type == "readout":
        raw = st.attributes.get(c.attribute) if c.attribute else st.value
        unit = st.attributes.get("unit_of_measurement") or st.attributes.get("unit") or ""
        return ControlView(c.type, label, f"{raw}{' ' + unit if unit else ''}", None, None, status, hovered)
    on = st.value in ON_VALUES
    return ControlView(c.type, label, error or str(st.value), on, None, status, hovered)


def build_view(
    panel: Panel,
    states: Mapping[str, EntityState],
    *,
    online: bool,
    pending: frozenset[int] = frozenset(),
    errors: Mapping[int, str] | None = None,
    hovered: int | None = None,
) -> PanelView:
    errors = errors or {}
    controls = tuple(
        _control_view(c, states.get(c.entity_id), i in pending, errors.get(i), i == hovered)
        for i, c in enumerate(panel.controls)
    )
    return PanelView(panel.title or panel.id, controls, offline=not online, message="offline" if not online else "")


class ViewDiff:
    """Remembers the last view submitted per panel; `changed` says which panels need a redraw + upload."""

    def __init__(self) -> None:
        self._last: dict[str, PanelView] = {}

    def changed(self, views: Mapping[str, PanelView]) -> list[str]:
        return [pid for pid, v in views.items() if self._last.get(pid) != v]

    def last(self, panel_id: str) -> PanelView | None:
        """The view last submitted for the panel (None: none yet)."""
        return self._last.get(panel_id)

    def commit(self, panel_id: str, view: PanelView) -> None:
        self._last[panel_id] = view

    def forget(self) -> None:
        self._last.clear()
