"""Choosing the graphics binding from what the runtime offers, and the GL path's row order.

The full frame loop over each binding runs against Monado in test_xr_full_loop.py; Monado offers both, so
the choice a Vulkan-less runtime forces is tested here on extension sets."""

from __future__ import annotations

import pytest

from qilu_hub.xr_bridge.glpanels import flip_rows
from qilu_hub.xr_bridge.runtime import GraphicsUnsupportedError, choose_graphics

VK = {"XR_KHR_vulkan_enable"}
GL_EGL = {"XR_KHR_opengl_enable", "XR_MNDX_egl_enable"}


def test_vulkan_preferred_when_offered() -> None:
    assert choose_graphics(VK | GL_EGL) == "vulkan"


def test_opengl_chosen_when_the_runtime_lacks_vulkan() -> None:
    assert choose_graphics(GL_EGL | {"XR_KHR_convert_timespec_time"}) == "opengl"


def test_opengl_on_request_even_with_vulkan() -> None:
    assert choose_graphics(VK | GL_EGL, "opengl") == "opengl"


@pytest.mark.parametrize(
    "have,pref,message",
    [
        ({"XR_KHR_opengl_enable"}, "auto", "without XR_MNDX_egl_enable"),
        (set(), "auto", "neither Vulkan"),
        (GL_EGL, "vulkan", "no Vulkan binding"),
        (VK, "opengl", "no OpenGL binding"),
        (VK | GL_EGL, "metal", "unknown graphics API"),
    ],
)
def test_unusable_runtime_says_why(have: set[str], pref: str, message: str) -> None:
    with pytest.raises(GraphicsUnsupportedError, match=message):
        choose_graphics(have, pref)


def test_flip_rows_reverses_row_order_and_is_its_own_inverse() -> None:
    w, h = 3, 4
    rows = [bytes([r] * (w * 4)) for r in range(h)]
    px = b"".join(rows)
    flipped = flip_rows(px, w, h)
    assert flipped == b"".join(reversed(rows))
    assert flip_rows(flipped, w, h) == px
