"""Panel layout: where each control sits on the panel texture, and which control a (u, v) hit lands on.

Shared by every client: the OpenXR bridge draws with it and the scene API sends it to WebXR and engine clients."""

from __future__ import annotations

from dataclasses import dataclass

from .model import Panel

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (pixels, exclusive end)


@dataclass(frozen=True)
class PanelLayout:
    width: int
    height: int
    title: Rect
    controls: tuple[Rect, ...]

    def control_at(self, u: float, v: float) -> int | None:
        x, y = u * self.width, v * self.height
        for i, (x0, y0, x1, y1) in enumerate(self.controls):
            if x0 <= x < x1 and y0 <= y < y1:
                return i
        return None

    def fraction_in(self, index: int, u: float) -> float:
        """Horizontal position of u inside control `index`, clamped to 0..1 (sliders)."""
        x0, _, x1, _ = self.controls[index]
        return min(1.0, max(0.0, (u * self.width - x0) / max(1, x1 - x0)))

    def centre_uv(self, index: int) -> tuple[float, float]:
        x0, y0, x1, y1 = self.controls[index]
        return (x0 + x1) / 2 / self.width, (y0 + y1) / 2 / self.height


def layout_panel(panel: Panel) -> PanelLayout:
    w, h = panel.pixel_size
    pad = max(4, w // 64)
    title_h = max(24, h // 6)
    cols = panel.columns if panel.layout == "grid" else 1
    n = len(panel.controls)
    rows = max(1, -(-n // cols))
    top = title_h + pad
    cell_w = (w - pad * (cols + 1)) // cols
    cell_h = (h - top - pad * (rows + 1)) // rows
    rects = []
    for i in range(n):
        r, c = divmod(i, cols)
        x0 = pad + c * (cell_w + pad)
        y0 = top + pad + r * (cell_h + pad)
        rects.append((x0, y0, x0 + cell_w, y0 + cell_h))
    return PanelLayout(w, h, (0, 0, w, title_h), tuple(rects))
