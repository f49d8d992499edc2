"""Draw a PanelView into an RGBA image with Pillow (the bridge uploads the bytes into a swapchain image)."""

from __future__ import annotations

from functools import cache

from PIL import Image, ImageDraw, ImageFont

from .layout import PanelLayout
from .view import ControlView, PanelView

BG = (18, 24, 38, 235)
TITLE_BG = (40, 52, 80, 255)
FG = (240, 240, 240, 255)
ON = (46, 170, 90, 255)
OFF = (70, 74, 86, 255)
PENDING = (200, 160, 40, 255)
ERROR = (190, 50, 50, 255)
UNAVAILABLE = (55, 55, 55, 255)
HOVER = (120, 180, 255, 255)
OFFLINE_BG = (90, 20, 20, 235)


@cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def control_fill(cv: ControlView) -> tuple[int, int, int, int]:
    if cv.status == "unavailable":
        return UNAVAILABLE
    if cv.status == "error":
        return ERROR
    if cv.status == "pending":
        return PENDING
    if cv.on is True:
        return ON
    return OFF


def render_panel(view: PanelView, layout: PanelLayout) -> Image.Image:
    im = Image.new("RGBA", (layout.width, layout.height), OFFLINE_BG if view.offline else BG)
    d = ImageDraw.Draw(im)
    tx0, ty0, tx1, ty1 = layout.title
    d.rectangle((tx0, ty0, tx1 - 1, ty1 - 1), fill=TITLE_BG)
    fs = max(10, (ty1 - ty0) * 3 // 5)
    title = f"{view.title}  [offline]" if view.offline else view.title
    d.text((tx0 + fs // 2, ty0 + (ty1 - ty0 - fs) // 2), title, fill=FG, font=font(fs))
    for cv, (x0, y0, x1, y1) in zip(view.controls, layout.controls, strict=True):
        fill = UNAVAILABLE if view.offline else control_fill(cv)
        if cv.kind == "slider" and cv.fraction is not None and not view.offline:
            d.rectangle((x0, y0, x1 - 1, y1 - 1), fill=OFF)
            filled = round((x1 - x0) * cv.fraction)
            if filled > 0:
                d.rectangle((x0, y0, x0 + filled - 1, y1 - 1), fill=ON if cv.status == "ok" else fill)
        elif cv.kind == "readout":
            d.rectangle((x0, y0, x1 - 1, y1 - 1), outline=OFF, width=2)
        else:
            d.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
        if cv.hovered:
            d.rectangle((x0, y0, x1 - 1, y1 - 1), outline=HOVER, width=max(2, (y1 - y0) // 20))
        fsz = max(8, min((y1 - y0) // 4, (x1 - x0) // 10))
        d.text((x0 + fsz // 2, y0 + fsz // 2), cv.label, fill=FG, font=font(fsz))
        d.text(
            (x0 + fsz // 2, y1 - fsz * 3 // 2),
            "offline" if view.offline else cv.text,
            fill=FG,
            font=font(fsz),
        )
    return im


def render_bytes(view: PanelView, layout: PanelLayout) -> bytes:
    return render_panel(view, layout).tobytes()
