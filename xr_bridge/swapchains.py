"""The OpenXR calls a panel swapchain makes whatever the graphics binding (Vulkan or OpenGL)."""

from __future__ import annotations

from typing import Any

import xr


class GraphicsUnsupportedError(Exception):
    """The runtime offers no graphics binding this bridge implements (here, below both bindings, so
    that the OpenGL path can raise it without importing the runtime that imports it)."""

_PANEL_USAGE = (
    xr.SwapchainUsageFlags.COLOR_ATTACHMENT_BIT
    | xr.SwapchainUsageFlags.TRANSFER_DST_BIT
    | xr.SwapchainUsageFlags.SAMPLED_BIT
)
_WAIT_NS = 1_000_000_000


def create_panel_swapchain(session: xr.Session, fmt: int, width: int, height: int, extra_usage: Any = 0) -> Any:
    """A single-sample, single-layer colour swapchain a panel image is copied into."""
    return xr.create_swapchain(
        session,
        xr.SwapchainCreateInfo(
            usage_flags=_PANEL_USAGE | extra_usage,
            format=fmt,
            sample_count=1,
            width=width,
            height=height,
            face_count=1,
            array_size=1,
            mip_count=1,
        ),
    )


def acquire_image(swapchain: Any) -> int:
    """Acquire the next image and wait until it may be written; returns its index."""
    index = int(xr.acquire_swapchain_image(swapchain, xr.SwapchainImageAcquireInfo()))
    xr.wait_swapchain_image(swapchain, xr.SwapchainImageWaitInfo(timeout=_WAIT_NS))
    return index


Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (pixels, exclusive end; top-down rows)


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class ImageDamage:
    """Which rectangles each image of one swapchain lacks.

    A swapchain cycles through several images (Monado: 3), and a partial update written into the image acquired
    now is missing from the others, which still hold what they held when last written. So each write is
    remembered against every other image, and the next time an image is acquired it gets everything it missed
    as well as the new rectangle (from the full copy of the panel that the caller keeps). An image never written
    gets the whole panel. Images keep their pixels between acquires: the runtime only reads them."""

    __slots__ = ("_missing", "full")

    MAX_RECTS = 4  # more missed rectangles than this per image are merged into their bounding box
    # OpenXR does not promise that an image keeps its pixels between acquires (Monado does, and the tests read
    # them back): `qilu-hub xr --whole-panel-uploads` turns partial copies off for a runtime that does not.
    partial = True

    def __init__(self, images: int, width: int, height: int) -> None:
        self.full: Rect = (0, 0, width, height)
        self._missing: list[list[Rect] | None] = [None] * images  # None: never written, needs everything

    def write(self, index: int, rect: Rect) -> list[Rect]:
        """``rect`` changed and image ``index`` is about to be written: the non-overlapping rectangles to copy
        into it (the first write of an image: the whole panel, alone)."""
        for i, missing in enumerate(self._missing):
            if i != index and missing is not None and rect not in missing:
                missing.append(rect)
                if len(missing) > self.MAX_RECTS:
                    self._missing[i] = [_bounds(missing)]
        before = self._missing[index]
        self._missing[index] = []
        if before is None or not self.partial:
            return [self.full]
        rects = before if rect in before else [*before, rect]
        # the copies of one command must not overlap in the image (vkCmdCopyBufferToImage): merge if any do
        if any(_overlap(a, b) for i, a in enumerate(rects) for b in rects[i + 1:]):
            return [_bounds(rects)]
        return rects


def _bounds(rects: list[Rect]) -> Rect:
    return (min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects))
