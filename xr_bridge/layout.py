"""Panel layout, shared with the scene API: see qilu_hub.scenes.layout (kept here for the bridge's imports)."""

from qilu_hub.scenes.layout import PanelLayout, Rect, layout_panel

__all__ = ["PanelLayout", "Rect", "layout_panel"]
