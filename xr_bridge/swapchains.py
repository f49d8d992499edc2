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
