"""OpenGL side of the panels, for runtimes that offer OpenGL rather than Vulkan.

The session is bound through XR_KHR_opengl_enable + XR_MNDX_egl_enable (XrGraphicsBindingEGLMNDX): a
headless EGL context (Mesa's surfaceless platform when offered, so no X server or window is needed). Each
swapchain image is a GL texture; a redraw is one glTexSubImage2D of the changed rectangle (and of what the
acquired image missed meanwhile). libEGL and libOpenGL
are called through ctypes: the bridge needs a dozen entry points, and PyOpenGL's platform is pinned to GLX
by pyopenxr at import time, which would route EGL calls wrongly."""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import xr

from .swapchains import GraphicsUnsupportedError, ImageDamage, Rect, acquire_image, create_panel_swapchain

GL_SRGB8_ALPHA8 = 0x8C43
GL_RGBA8 = 0x8058
GL_FORMATS = (GL_SRGB8_ALPHA8, GL_RGBA8)  # Pillow gives sRGB-encoded RGBA, as the Vulkan path's formats

_GL_TEXTURE_2D = 0x0DE1
_GL_RGBA = 0x1908
_GL_UNSIGNED_BYTE = 0x1401
_GL_UNPACK_ALIGNMENT = 0x0CF5
_GL_PACK_ALIGNMENT = 0x0D05
_GL_VENDOR, _GL_RENDERER, _GL_VERSION = 0x1F00, 0x1F01, 0x1F02
_GL_MAJOR_VERSION, _GL_MINOR_VERSION = 0x821B, 0x821C

_EGL_NONE = 0x3038
_EGL_EXTENSIONS = 0x3055
_EGL_OPENGL_API = 0x30A2
_EGL_SURFACE_TYPE = 0x3033
_EGL_PBUFFER_BIT = 0x0001
_EGL_RENDERABLE_TYPE = 0x3040
_EGL_OPENGL_BIT = 0x0008
_EGL_RED_SIZE, _EGL_GREEN_SIZE, _EGL_BLUE_SIZE, _EGL_ALPHA_SIZE = 0x3024, 0x3023, 0x3022, 0x3021
_EGL_WIDTH, _EGL_HEIGHT = 0x3057, 0x3056
_EGL_CONTEXT_MAJOR_VERSION = 0x3098
_EGL_CONTEXT_MINOR_VERSION = 0x30FB
_EGL_CONTEXT_OPENGL_PROFILE_MASK = 0x30FD
_EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT = 0x1
_EGL_PLATFORM_SURFACELESS_MESA = 0x31DD

_vp = ctypes.c_void_p


def _load(name: str, *alts: str) -> ctypes.CDLL:
    for n in (name, *alts):
        try:
            return ctypes.CDLL(n)
        except OSError:
            continue
    raise GraphicsUnsupportedError(f"OpenGL path: cannot load {name} (apt-get install libegl1 libgl1-mesa-dri)")


def _proto(lib: ctypes.CDLL, name: str, restype: Any, *argtypes: Any) -> Any:
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


class _Egl:
    def __init__(self) -> None:
        lib = _load("libEGL.so.1", "libEGL.so")
        self.lib = lib
        i, u = ctypes.c_int32, ctypes.c_uint32
        self.GetError = _proto(lib, "eglGetError", i)
        self.QueryString = _proto(lib, "eglQueryString", ctypes.c_char_p, _vp, i)
        self.GetDisplay = _proto(lib, "eglGetDisplay", _vp, _vp)
        self.GetPlatformDisplay = _proto(lib, "eglGetPlatformDisplay", _vp, u, _vp, _vp)
        self.Initialize = _proto(lib, "eglInitialize", u, _vp, ctypes.POINTER(i), ctypes.POINTER(i))
        self.BindAPI = _proto(lib, "eglBindAPI", u, u)
        self.ChooseConfig = _proto(
            lib, "eglChooseConfig", u, _vp, ctypes.POINTER(i), ctypes.POINTER(_vp), i, ctypes.POINTER(i)
        )
        self.CreateContext = _proto(lib, "eglCreateContext", _vp, _vp, _vp, _vp, ctypes.POINTER(i))
        self.CreatePbufferSurface = _proto(lib, "eglCreatePbufferSurface", _vp, _vp, _vp, ctypes.POINTER(i))
        self.MakeCurrent = _proto(lib, "eglMakeCurrent", u, _vp, _vp, _vp, _vp)
        self.DestroySurface = _proto(lib, "eglDestroySurface", u, _vp, _vp)
        self.DestroyContext = _proto(lib, "eglDestroyContext", u, _vp, _vp)
        self.Terminate = _proto(lib, "eglTerminate", u, _vp)
        # handed to the runtime, which looks up what it needs itself (eglQueryContext, GL entry points)
        self.get_proc_address = xr.PFN_xrEglGetProcAddressMNDX(("eglGetProcAddress", lib))

    def fail(self, what: str) -> GraphicsUnsupportedError:
        return GraphicsUnsupportedError(f"OpenGL path: {what} failed (EGL error 0x{self.GetError():04x})")


class _Gl:
    def __init__(self) -> None:
        lib = _load("libOpenGL.so.0", "libGL.so.1")
        u, i, sz = ctypes.c_uint32, ctypes.c_int32, ctypes.c_int32
        self.GetString = _proto(lib, "glGetString", ctypes.c_char_p, u)
        self.GetIntegerv = _proto(lib, "glGetIntegerv", None, u, ctypes.POINTER(i))
        self.GetError = _proto(lib, "glGetError", u)
        self.BindTexture = _proto(lib, "glBindTexture", None, u, u)
        self.PixelStorei = _proto(lib, "glPixelStorei", None, u, i)
        self.TexSubImage2D = _proto(lib, "glTexSubImage2D", None, u, i, i, i, sz, sz, u, u, ctypes.c_char_p)
        self.GetTexImage = _proto(lib, "glGetTexImage", None, u, i, u, u, _vp)
        self.Flush = _proto(lib, "glFlush", None)
        self.Finish = _proto(lib, "glFinish", None)


def _version_tuple(packed: int) -> tuple[int, int]:
    return (packed >> 48) & 0xFFFF, (packed >> 32) & 0xFFFF


class GlContext:
    """A headless EGL/OpenGL context created the way the runtime asks (min/max GL version)."""

    def __init__(self, instance: xr.Instance, system_id: Any) -> None:
        req = xr.get_opengl_graphics_requirements_khr(instance, system_id)  # required before xrCreateSession
        need = _version_tuple(int(req.min_api_version_supported))
        self.egl = egl = _Egl()
        self.gl = _Gl()
        client = (egl.QueryString(None, _EGL_EXTENSIONS) or b"").decode()
        if "EGL_MESA_platform_surfaceless" in client:
            self.display = egl.GetPlatformDisplay(_EGL_PLATFORM_SURFACELESS_MESA, None, None)
        else:
            self.display = egl.GetDisplay(None)
        if not self.display:
            raise egl.fail("eglGetDisplay")
        major, minor = ctypes.c_int32(), ctypes.c_int32()
        if not egl.Initialize(self.display, ctypes.byref(major), ctypes.byref(minor)):
            raise egl.fail("eglInitialize")
        if not egl.BindAPI(_EGL_OPENGL_API):
            raise egl.fail("eglBindAPI(OpenGL)")
        attrs = [_EGL_SURFACE_TYPE, _EGL_PBUFFER_BIT, _EGL_RENDERABLE_TYPE, _EGL_OPENGL_BIT]
        attrs += [_EGL_RED_SIZE, 8, _EGL_GREEN_SIZE, 8, _EGL_BLUE_SIZE, 8, _EGL_ALPHA_SIZE, 8, _EGL_NONE]
        self.config = _vp()
        n = ctypes.c_int32()
        arr = (ctypes.c_int32 * len(attrs))(*attrs)
        if not egl.ChooseConfig(self.display, arr, ctypes.byref(self.config), 1, ctypes.byref(n)) or n.value < 1:
            raise egl.fail("eglChooseConfig(RGBA8, OpenGL)")
        # a core context of at least the version the runtime needs (Monado: 4.5 for memory objects)
        want = max(need, (3, 3))
        cattrs = [
            _EGL_CONTEXT_MAJOR_VERSION,
            want[0],
            _EGL_CONTEXT_MINOR_VERSION,
            want[1],
            _EGL_CONTEXT_OPENGL_PROFILE_MASK,
            _EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT,
            _EGL_NONE,
        ]
        self.context = egl.CreateContext(self.display, self.config, None, (ctypes.c_int32 * len(cattrs))(*cattrs))
        if not self.context:
            raise egl.fail(f"eglCreateContext(OpenGL {want[0]}.{want[1]} core)")
        self.surface: Any = None
        if "EGL_KHR_surfaceless_context" not in (egl.QueryString(self.display, _EGL_EXTENSIONS) or b"").decode():
            pb = (ctypes.c_int32 * 5)(_EGL_WIDTH, 1, _EGL_HEIGHT, 1, _EGL_NONE)
            self.surface = egl.CreatePbufferSurface(self.display, self.config, pb)
        if not egl.MakeCurrent(self.display, self.surface, self.surface, self.context):
            raise egl.fail("eglMakeCurrent")
        self.renderer = (self.gl.GetString(_GL_RENDERER) or b"?").decode()
        self.version = (self.gl.GetString(_GL_VERSION) or b"?").decode()
        self.gl.PixelStorei(_GL_UNPACK_ALIGNMENT, 1)
        self.gl.PixelStorei(_GL_PACK_ALIGNMENT, 1)

    formats = GL_FORMATS

    def binding(self) -> Any:
        # pyopenxr types these fields as PyOpenGL's EGL pointer types when PyOpenGL is installed
        ftype = dict(xr.GraphicsBindingEGLMNDX._fields_)

        def handle(name: str, value: Any) -> Any:
            return ctypes.cast(_vp(value if isinstance(value, int) else getattr(value, "value", value)), ftype[name])

        return xr.GraphicsBindingEGLMNDX(
            get_proc_address=self.egl.get_proc_address,
            display=handle("display", self.display),
            config=handle("config", self.config),
            context=handle("context", self.context),
        )

    def new_swapchain(self, session: xr.Session, width: int, height: int, fmt: int) -> GlPanelSwapchain:
        return GlPanelSwapchain(self, session, width, height, fmt)

    def submit(self, _pending: list[Any]) -> None:
        # the uploads are already queued on this context; the runtime fences them when the frame ends
        self.gl.Flush()

    def settle(self) -> None:
        """Nothing to wait for: glTexSubImage2D has read the pixels by the time it returns."""

    def wait_idle(self) -> None:
        self.gl.Finish()

    def destroy(self) -> None:
        egl = self.egl
        egl.MakeCurrent(self.display, None, None, None)
        if self.surface:
            egl.DestroySurface(self.display, self.surface)
        egl.DestroyContext(self.display, self.context)
        egl.Terminate(self.display)


def flip_rows(pixels: bytes, width: int, height: int) -> bytes:
    """Top-down rows (Pillow) <-> bottom-up rows (GL: OpenXR flips GL swapchain images when compositing)."""
    stride = width * 4
    mv = memoryview(pixels)
    return b"".join(mv[r * stride : (r + 1) * stride] for r in range(height - 1, -1, -1))


class GlPanelSwapchain:
    """One panel's swapchain; the same interface as vkpanels.PanelSwapchain."""

    __slots__ = ("_damage", "_full", "_index", "ctx", "fmt", "height", "session", "swapchain", "textures",
                 "uploaded_bytes", "width")

    def __init__(self, ctx: GlContext, session: xr.Session, width: int, height: int, fmt: int) -> None:
        self.ctx = ctx
        self.session = session
        self.width = width
        self.height = height
        self.fmt = fmt
        self.swapchain: Any = None
        self.textures: list[int] = []
        self.uploaded_bytes = 0
        # the whole current panel, top-down rows: images are brought up to date from it (swapchains.ImageDamage)
        self._full = np.zeros((height, width * 4), dtype=np.uint8)
        self._damage = ImageDamage(0, width, height)
        self._index = -1

    def create(self) -> None:
        self.swapchain = create_panel_swapchain(self.session, self.fmt, self.width, self.height)
        self.textures = [
            int(i.image) for i in xr.enumerate_swapchain_images(self.swapchain, xr.SwapchainImageOpenGLKHR)
        ]
        self._damage = ImageDamage(len(self.textures), self.width, self.height)

    def acquire(self, pixels: Any, rect: Rect | None = None) -> None:
        """Acquire + wait an image and upload into its texture what it lacks: ``pixels``, the rows of ``rect``
        (default: the whole panel), and what was written into the other images since it was last written."""
        gl = self.ctx.gl
        x0, y0, x1, y1 = rect = rect or (0, 0, self.width, self.height)
        self._full[y0:y1, x0 * 4 : x1 * 4] = np.frombuffer(pixels, dtype=np.uint8).reshape(y1 - y0, -1)
        self._index = acquire_image(self.swapchain)
        regions = self._damage.write(self._index, rect)
        self.uploaded_bytes = 0
        gl.BindTexture(_GL_TEXTURE_2D, self.textures[self._index])
        for rx0, ry0, rx1, ry1 in regions:
            # GL rows run bottom-up: the rectangle's rows reversed, placed from the bottom of the texture
            rows = np.ascontiguousarray(self._full[ry0:ry1, rx0 * 4 : rx1 * 4][::-1])
            gl.TexSubImage2D(_GL_TEXTURE_2D, 0, rx0, self.height - ry1, rx1 - rx0, ry1 - ry0, _GL_RGBA,
                             _GL_UNSIGNED_BYTE, rows.tobytes())
            self.uploaded_bytes += rows.nbytes
        gl.BindTexture(_GL_TEXTURE_2D, 0)

    @property
    def image_index(self) -> int:
        """The swapchain image acquired last."""
        return self._index

    def release(self) -> None:
        xr.release_swapchain_image(self.swapchain, xr.SwapchainImageReleaseInfo())

    def read_back(self) -> bytes:
        """The acquired image's texture, back on the CPU in top-down rows (debug/tests). Between acquire()
        and release()."""
        gl = self.ctx.gl
        buf = ctypes.create_string_buffer(self.width * self.height * 4)
        gl.Finish()
        gl.BindTexture(_GL_TEXTURE_2D, self.textures[self._index])
        gl.GetTexImage(_GL_TEXTURE_2D, 0, _GL_RGBA, _GL_UNSIGNED_BYTE, ctypes.cast(buf, _vp))
        gl.BindTexture(_GL_TEXTURE_2D, 0)
        err = gl.GetError()
        if err:
            raise RuntimeError(f"glGetTexImage failed: GL error 0x{err:04x}")
        return flip_rows(buf.raw, self.width, self.height)

    def destroy(self) -> None:
        if self.swapchain is not None:
            xr.destroy_swapchain(self.swapchain)
            self.swapchain = None
