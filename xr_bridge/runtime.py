"""OpenXR glue: instance, actions and bindings, Vulkan-bound session, session state machine, frame loop.

All decisions (hit testing, bindings, what to draw) live in core.BridgeCore; this file only moves data
between the runtime, the hub stream thread and the core."""

from __future__ import annotations

import ctypes
import gc
import logging
import signal
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import xr

from . import ext_anchors
from .core import BridgeCore, HandInput, Trace
from .environment import (
    DEFAULT_BLEND,
    DEFAULT_EYE_HEIGHT,
    LOCAL_FLOOR_EXTENSION,
    PASSTHROUGH_EXTENSION,
    EnvironmentChoiceError,
    choose_blend,
    choose_space,
)
from .geometry import Pose
from .painter import Painter
from .render import dirty_rect, render_region
from .stream import AuthError, StreamThread
from .swapchains import GraphicsUnsupportedError, Rect

_LOG = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_SCENE = 3
EXIT_NO_RUNTIME = 4
EXIT_AUTH = 5
EXIT_NO_GRAPHICS = 6
EXIT_RUNTIME_LOST = 7
EXIT_GRACE_S = 5.0
STATS_FRAMES = 10_000
INLINE_PAINTS = 2  # panels painted inside the frame: a change on one or two shows in the frame it arrived
MAX_UPLOADS = 8  # panel changes swapped in per frame at most (each a staging copy); more wait a frame
MAX_REQUESTS = 16  # requests sent to the painter per frame at most (each a pickled view): two frames' uploads

HANDS = ("left", "right")
# panels are see-through where their background is (alpha < 255: the room shows through on a passthrough or
# see-through headset), and Pillow draws straight (not premultiplied) alpha; without UNPREMULTIPLIED the runtime
# would take the colours as already multiplied by alpha and composite those pixels too bright
QUAD_FLAGS = (xr.CompositionLayerFlags.BLEND_TEXTURE_SOURCE_ALPHA_BIT
              | xr.CompositionLayerFlags.UNPREMULTIPLIED_ALPHA_BIT)
# (action, hand or None for both, input subpath); a boolean action bound to a float input is thresholded by
# the runtime. system/click is reserved on most runtimes, so "menu" uses the free face button where needed.
PROFILES: dict[str, list[tuple[str, str | None, str]]] = {
    "/interaction_profiles/khr/simple_controller": [
        ("select", None, "select/click"),
        ("menu", None, "menu/click"),
    ],
    "/interaction_profiles/oculus/touch_controller": [
        ("select", None, "trigger/value"),
        ("grab", None, "squeeze/value"),
        ("menu", "left", "menu/click"),
        ("menu", "right", "b/click"),
    ],
    "/interaction_profiles/valve/index_controller": [
        ("select", None, "trigger/click"),
        ("grab", None, "squeeze/value"),
        ("menu", None, "b/click"),
    ],
    "/interaction_profiles/htc/vive_controller": [
        ("select", None, "trigger/click"),
        ("grab", None, "squeeze/click"),
        ("menu", None, "menu/click"),
    ],
    "/interaction_profiles/ext/hand_interaction_ext": [
        ("select", None, "aim_activate_ext/value"),
        ("grab", None, "grasp_ext/value"),
    ],
}
PROFILE_EXTENSIONS = {"/interaction_profiles/ext/hand_interaction_ext": "XR_EXT_hand_interaction"}


# what a runtime raises once it (or its service, or the headset) is gone
LOST_ERRORS = (xr.SessionLossPending, xr.SessionLostError, xr.InstanceLostError)


class NoRuntimeError(Exception):
    """No OpenXR runtime (or no headset) is available."""


class FrameStats:
    """Per-frame timings of the last STATS_FRAMES frames (bounded: the bridge runs for hours)."""

    def __init__(self) -> None:
        self.render_s: deque[float] = deque(maxlen=STATS_FRAMES)
        self.upload_s: deque[float] = deque(maxlen=STATS_FRAMES)
        self.logic_s: deque[float] = deque(maxlen=STATS_FRAMES)
        self.cpu_s: deque[float] = deque(maxlen=STATS_FRAMES)  # main-thread CPU, excluding xrWaitFrame
        self.uploads: deque[int] = deque(maxlen=STATS_FRAMES)
        self.upload_bytes: deque[int] = deque(maxlen=STATS_FRAMES)  # copied into swapchain images
        self.frame_period_s: deque[float] = deque(maxlen=STATS_FRAMES)
        # display refreshes that went by without a new frame from us before this one (0: none missed), from
        # xrWaitFrame's predicted display times: what the compositor saw, not what the bridge measured itself
        self.missed: deque[int] = deque(maxlen=STATS_FRAMES)
        # the display's refresh period: the shortest predictedDisplayPeriod seen (a runtime that throttles a slow
        # app reports a multiple of it, e.g. Monado after a stall, so the latest one would hide misses)
        self.refresh_period_ns = 0


def _pose(p: xr.Posef) -> Pose:
    return Pose(
        (p.position.x, p.position.y, p.position.z),
        (p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w),
    )


def _posef(p: Pose) -> xr.Posef:
    return xr.Posef(orientation=xr.Quaternionf(*p.orientation), position=xr.Vector3f(*p.position))


def _request_id(rid: Any) -> int:
    return int(getattr(rid, "value", rid))


GRAPHICS_EXTENSIONS = {
    "vulkan": ("XR_KHR_vulkan_enable",),
    # the GL path is headless EGL: Monado's XR_MNDX_egl_enable binding on top of XR_KHR_opengl_enable
    "opengl": ("XR_KHR_opengl_enable", "XR_MNDX_egl_enable"),
}
GRAPHICS_CHOICES = ("auto", "vulkan", "opengl")


def choose_graphics(have: set[str], pref: str = "auto") -> str:
    """Which graphics binding to use: Vulkan when offered (or asked for), else OpenGL through EGL."""
    if pref not in GRAPHICS_CHOICES:
        raise GraphicsUnsupportedError(f"unknown graphics API {pref!r} (one of {', '.join(GRAPHICS_CHOICES)})")
    order = ("vulkan", "opengl") if pref == "auto" else (pref,)
    for api in order:
        if all(e in have for e in GRAPHICS_EXTENSIONS[api]):
            return api
    if pref == "vulkan":
        raise GraphicsUnsupportedError("the runtime offers no Vulkan binding (XR_KHR_vulkan_enable)")
    if pref == "opengl" and "XR_KHR_opengl_enable" not in have:
        raise GraphicsUnsupportedError("the runtime offers no OpenGL binding (XR_KHR_opengl_enable)")
    if "XR_KHR_opengl_enable" in have:
        raise GraphicsUnsupportedError(
            "the runtime offers OpenGL only through a window system (XR_KHR_opengl_enable without "
            "XR_MNDX_egl_enable); this bridge renders through Vulkan or headless EGL"
        )
    raise GraphicsUnsupportedError(
        "the runtime offers neither Vulkan (XR_KHR_vulkan_enable) nor OpenGL on EGL "
        "(XR_KHR_opengl_enable + XR_MNDX_egl_enable)"
    )


def available_extensions() -> set[str]:
    try:
        props = xr.enumerate_instance_extension_properties()
    except (xr.RuntimeUnavailableError, xr.RuntimeFailureError) as e:
        raise NoRuntimeError(
            f"no OpenXR runtime found ({e}). Install/start one (SteamVR, Monado, Meta Quest Link) "
            "or point XR_RUNTIME_JSON at its manifest"
        ) from None
    return {p.extension_name.decode() if isinstance(p.extension_name, bytes) else str(p.extension_name) for p in props}


class XrBridge:
    """The OpenXR client process: create() then run(). Frame budget tracking in `stats`."""

    def __init__(
        self,
        core: BridgeCore,
        stream: StreamThread | None,
        trace: Trace | None = None,
        dump_dir: Path | None = None,
        max_frames: int | None = None,
        on_frame: Callable[[XrBridge], None] | None = None,
        graphics: str = "auto",
        *,
        space: str = "auto",
        eye_height: float = DEFAULT_EYE_HEIGHT,
        blend: tuple[str, ...] = DEFAULT_BLEND,
        inline_paints: int = INLINE_PAINTS,
        max_uploads: int = MAX_UPLOADS,
        max_requests: int = MAX_REQUESTS,
    ) -> None:
        self.core = core
        self.stream = stream
        self.trace = trace or Trace()
        self.dump_dir = dump_dir
        self.max_frames = max_frames
        self.on_frame = on_frame
        self.stats = FrameStats()
        self.state: xr.SessionState | None = None
        self.running = False
        self.exit_code: int | None = None
        self._last_frame_t: float | None = None
        self.last_display_time: int | None = None  # XrTime the frame being drawn is predicted to show at
        self.format = 0
        self._exit_requested = False
        self._lost = False
        self.extensions: set[str] = set()
        self.anchor_kind: str | None = None
        self._anchors: dict[str, Any] = {}
        self._anchor_spaces: dict[str, Any] = {}
        self._anchor_requests: dict[int, str] = {}  # FB: async request id -> anchor name
        self._anchor_failed: set[str] = set()
        self._ext_future: Any = None  # XR_EXT_spatial_anchor: the spatial context being created
        self._ext_cfg: Any = None  # its capability config, kept alive while the runtime may read it
        self._ext_context: Any = None
        self._ext_entities: dict[str, tuple[int, Any]] = {}  # name -> (entity id, entity handle)
        self.chains: dict[str, Any] = {}
        self.quads: dict[str, xr.CompositionLayerQuad] = {}
        self._quad_pose: dict[str, Pose] = {}
        self._layer_ptrs: dict[str, Any] = {}
        self.graphics_pref = graphics
        self.space_pref, self.eye_height, self.blend_pref = space, eye_height, blend
        self.blend_mode = xr.EnvironmentBlendMode.OPAQUE
        self._passthrough: Any = None  # XR_FB_passthrough: the feature and its layer, when used
        self._passthrough_layer: Any = None
        self._passthrough_ptr: Any = None
        self.inline_paints, self.max_uploads, self.max_requests = inline_paints, max_uploads, max_requests
        self.painter: Painter | None = None
        # per panel: (shown view, wanted view, their dirty rectangle). In a burst every dirty panel is looked at
        # each frame until its turn comes; recomputing the rectangle for 100 panels cost ~1 ms of such a frame
        self._rects: dict[str, tuple[Any, Any, Rect | None]] = {}
        self.graphics = ""
        self.gfx: Any = None  # vkpanels.VkContext or glpanels.GlContext
        self.instance: Any = None
        self.session: Any = None

    # ------------------------------------------------------------------ setup
    def create(self) -> None:
        have = available_extensions()
        self.graphics = choose_graphics(have, self.graphics_pref)
        want = list(GRAPHICS_EXTENSIONS[self.graphics])
        want += [e for e in ("XR_KHR_convert_timespec_time", "XR_EXT_hand_interaction", LOCAL_FLOOR_EXTENSION)
                 if e in have]
        if PASSTHROUGH_EXTENSION in have and "passthrough" in self.blend_pref:
            want.append(PASSTHROUGH_EXTENSION)
        # spatial anchors: the ratified XR_EXT_spatial_anchor first (if the system has the capability, checked
        # once the system is known), else MSFT (synchronous), else FB (asynchronous); none: stage placement
        ext_anchor = ext_anchors.offered(have)
        if ext_anchor:
            want += [e for e in ext_anchors.EXTENSIONS if e not in want]
        if "XR_MSFT_spatial_anchor" in have:
            self.anchor_kind = "msft"
            want.append("XR_MSFT_spatial_anchor")
        elif "XR_FB_spatial_entity" in have:
            self.anchor_kind = "fb"
            want.append("XR_FB_spatial_entity")
        self.extensions = set(want)
        try:
            self.instance = xr.create_instance(
                xr.InstanceCreateInfo(
                    application_info=xr.ApplicationInfo(application_name="qilu-hub-xr", engine_name="qilu-hub"),
                    enabled_extension_names=want,
                )
            )
        except (xr.RuntimeFailureError, xr.RuntimeUnavailableError, xr.InitializationFailedError) as e:
            # e.g. an out-of-process runtime whose service is not running (Monado without monado-service)
            raise NoRuntimeError(
                f"the OpenXR runtime failed to start ({type(e).__name__}); if it runs as a service "
                "(monado-service, SteamVR), start it first"
            ) from None
        try:
            self.system = xr.get_system(self.instance, xr.SystemGetInfo(form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY))
        except xr.FormFactorUnavailableError:
            raise NoRuntimeError("the OpenXR runtime has no headset connected") from None
        props = xr.get_system_properties(self.instance, self.system)
        blends = list(xr.enumerate_environment_blend_modes(self.instance, self.system,
                                                           xr.ViewConfigurationType.PRIMARY_STEREO))
        try:
            blend = choose_blend(blends, self.extensions, self.blend_pref)
        except EnvironmentChoiceError as e:
            raise GraphicsUnsupportedError(str(e)) from None
        self.blend_mode = blend.mode
        if ext_anchor:
            try:
                if ext_anchors.anchor_capable(self.instance, self.system):
                    self.anchor_kind = "ext"
            except xr.XrException as e:  # capability query failed: keep the fallback chosen above
                _LOG.info("XR_EXT_spatial_entity capability query failed: %s", e)
        self._create_actions()
        self.gfx = self._graphics_context()
        self.trace(
            "system",
            name=props.system_name.decode(),
            extensions=sorted(want),
            anchors=self.anchor_kind,
            graphics=self.graphics,
            renderer=getattr(self.gfx, "renderer", None),
        )
        self.session = xr.create_session(
            self.instance, xr.SessionCreateInfo(system_id=self.system, next=self.gfx.binding())
        )
        xr.attach_session_action_sets(self.session, xr.SessionActionSetsAttachInfo(action_sets=[self.action_set]))
        spaces = list(xr.enumerate_reference_spaces(self.session))
        try:
            space = choose_space(spaces, self.space_pref, self.eye_height)
        except EnvironmentChoiceError as e:
            raise GraphicsUnsupportedError(str(e)) from None
        self.base = xr.create_reference_space(
            self.session,
            xr.ReferenceSpaceCreateInfo(reference_space_type=space.kind, pose_in_reference_space=_posef(space.origin)),
        )
        self.trace("base_space", kind=space.kind.name, origin=list(space.origin.position),
                   offered=sorted(xr.ReferenceSpaceType(k).name for k in spaces))
        if blend.passthrough_layer:
            self._start_passthrough()
        offered, mode = [xr.EnvironmentBlendMode(m).name for m in blends], xr.EnvironmentBlendMode(self.blend_mode).name
        self.trace("blend", mode=mode, choice=blend.name, offered=offered,
                   passthrough_layer=self._passthrough_layer is not None)
        # said once at start: whether the room shows around the panels depends on it, and on the runtime's offer
        _LOG.info("environment blend mode %s%s; the runtime offers %s", mode,
                  " with an XR_FB_passthrough layer" if self._passthrough_layer is not None else "", ", ".join(offered))
        self.painter = Painter(render_region, {pid: pp.layout for pid, pp in self.core.placed.items()})
        self.aim_spaces = [
            xr.create_action_space(self.session, xr.ActionSpaceCreateInfo(action=self.aim, subaction_path=h))
            for h in self.hand_paths
        ]
        fmts = list(xr.enumerate_swapchain_formats(self.session))
        fmt = next((f for f in self.gfx.formats if f in fmts), None)
        if fmt is None:
            raise GraphicsUnsupportedError(f"no RGBA8 swapchain format among {fmts}")
        self.format = fmt

    def _start_passthrough(self) -> None:
        """XR_FB_passthrough: the room as a layer under the panels (the frame itself stays OPAQUE)."""
        running = xr.PassthroughFlagsFB.IS_RUNNING_AT_CREATION_BIT
        try:
            self._passthrough = xr.create_passthrough_fb(self.session, xr.PassthroughCreateInfoFB(flags=running))
            self._passthrough_layer = xr.create_passthrough_layer_fb(self.session, xr.PassthroughLayerCreateInfoFB(
                passthrough=self._passthrough, flags=running, purpose=xr.PassthroughLayerPurposeFB.RECONSTRUCTION))
        except xr.XrException as e:  # e.g. the user has not allowed it: panels over black, not no panels
            self.trace("passthrough_failed", error=repr(e))
            return
        self._passthrough_ptr = ctypes.pointer(xr.CompositionLayerPassthroughFB(
            layer_handle=self._passthrough_layer))

    def _graphics_context(self) -> Any:
        # imported late: `vulkan` needs libvulkan at import time, the GL path libEGL
        if self.graphics == "opengl":
            from .glpanels import GlContext

            return GlContext(self.instance, self.system)
        from .vkpanels import VkContext

        return VkContext(self.instance, self.system, "qilu-hub-xr")

    def _create_actions(self) -> None:
        inst = self.instance
        self.action_set = xr.create_action_set(
            inst,
            xr.ActionSetCreateInfo(action_set_name="qilu_panels", localized_action_set_name="Qilu panels", priority=0),
        )
        self.hand_paths = [xr.string_to_path(inst, f"/user/hand/{h}") for h in HANDS]

        def action(name: str, kind: xr.ActionType) -> xr.Action:
            return xr.create_action(
                self.action_set,
                xr.ActionCreateInfo(
                    action_type=kind,
                    action_name=name,
                    localized_action_name=name.title(),
                    subaction_paths=self.hand_paths,
                ),
            )

        self.buttons = {n: action(n, xr.ActionType.BOOLEAN_INPUT) for n in ("select", "grab", "menu")}
        self.aim = action("aim", xr.ActionType.POSE_INPUT)
        self.grip = action("grip", xr.ActionType.POSE_INPUT)
        self.bound_profiles: list[str] = []
        for profile, entries in PROFILES.items():
            ext = PROFILE_EXTENSIONS.get(profile)
            if ext and ext not in self.extensions:
                continue
            sb = [
                xr.ActionSuggestedBinding(self.buttons[a], xr.string_to_path(inst, f"/user/hand/{h}/input/{sub}"))
                for a, hand, sub in entries
                for h in ((hand,) if hand else HANDS)
            ]
            for h in HANDS:
                sb.append(
                    xr.ActionSuggestedBinding(self.aim, xr.string_to_path(inst, f"/user/hand/{h}/input/aim/pose"))
                )
                sb.append(
                    xr.ActionSuggestedBinding(self.grip, xr.string_to_path(inst, f"/user/hand/{h}/input/grip/pose"))
                )
            try:
                xr.suggest_interaction_profile_bindings(
                    inst,
                    xr.InteractionProfileSuggestedBinding(
                        interaction_profile=xr.string_to_path(inst, profile), suggested_bindings=sb
                    ),
                )
                self.bound_profiles.append(profile)
            except xr.XrException as e:  # one unsupported profile must not cost the others
                _LOG.info("runtime refused bindings for %s: %s", profile, e)
        self.trace("bindings", profiles=self.bound_profiles)

    # ------------------------------------------------------------------ session state machine
    def _poll_events(self) -> None:
        while True:
            try:
                ev = xr.poll_event(self.instance)
            except xr.EventUnavailable:
                return
            kind = xr.StructureType(ev.type)
            if kind == xr.StructureType.EVENT_DATA_SESSION_STATE_CHANGED:
                e = ctypes.cast(ctypes.byref(ev), ctypes.POINTER(xr.EventDataSessionStateChanged)).contents
                self._on_state(xr.SessionState(e.state))
            elif kind == xr.StructureType.EVENT_DATA_INSTANCE_LOSS_PENDING:
                self.trace("instance_loss_pending")
                self.exit_code = EXIT_RUNTIME_LOST
                self._lost = True
            elif kind == xr.StructureType.EVENT_DATA_SPATIAL_ANCHOR_CREATE_COMPLETE_FB:
                e = ctypes.cast(ctypes.byref(ev), ctypes.POINTER(xr.EventDataSpatialAnchorCreateCompleteFB)).contents
                self._on_fb_anchor(_request_id(e.request_id), int(e.result), e.space)
            elif kind == xr.StructureType.EVENT_DATA_INTERACTION_PROFILE_CHANGED:
                prof = [self._profile(h) for h in self.hand_paths]
                self.trace("interaction_profile", left=prof[0], right=prof[1])

    def _on_fb_anchor(self, request_id: int, result: int, space: Any) -> None:
        name = self._anchor_requests.pop(request_id, None)
        if name is None:
            return
        if result >= 0:
            self._anchor_spaces[name] = space
        else:
            self._anchor_failed.add(name)  # keep the stored stage pose for this anchor
            self.trace("anchor_failed", anchor=name, result=result)

    def _profile(self, hand: Any) -> str:
        p = xr.get_current_interaction_profile(self.session, hand).interaction_profile
        return xr.path_to_string(self.instance, p) if p else ""

    def _on_state(self, st: xr.SessionState) -> None:
        self.state = st
        self.trace("session_state", state=st.name)
        S = xr.SessionState
        if st == S.READY:
            xr.begin_session(
                self.session,
                xr.SessionBeginInfo(primary_view_configuration_type=xr.ViewConfigurationType.PRIMARY_STEREO),
            )
            self.running = True
        elif st == S.STOPPING:
            xr.end_session(self.session)
            self.running = False
        elif st == S.EXITING:
            self.exit_code = EXIT_OK if self.exit_code is None else self.exit_code
        elif st == S.LOSS_PENDING:
            # the runtime is going away (e.g. headset unplugged); end cleanly, the caller may restart us
            self.exit_code = EXIT_RUNTIME_LOST
        # IDLE / SYNCHRONIZED / VISIBLE / FOCUSED: the frame loop adapts (input only when FOCUSED,
        # layers only when the runtime asks us to render)

    def request_exit(self, *_: Any) -> None:
        self._exit_requested = True

    # ------------------------------------------------------------------ per frame
    def _read_input(self, t: int) -> dict[int, HandInput]:
        try:
            xr.sync_actions(
                self.session,
                xr.ActionsSyncInfo(active_action_sets=[xr.ActiveActionSet(self.action_set, xr.NULL_PATH)]),
            )
        except xr.SessionNotFocused:  # pyopenxr raises this *success* code
            return {}
        need = xr.SpaceLocationFlags.POSITION_VALID_BIT | xr.SpaceLocationFlags.ORIENTATION_VALID_BIT
        out: dict[int, HandInput] = {}
        for i, hp in enumerate(self.hand_paths):
            pressed = {
                n: bool(
                    xr.get_action_state_boolean(
                        self.session, xr.ActionStateGetInfo(action=a, subaction_path=hp)
                    ).current_state
                )
                for n, a in self.buttons.items()
            }
            loc = xr.locate_space(self.aim_spaces[i], self.base, t)
            aim = _pose(loc.pose) if (loc.location_flags & need) == need else None
            out[i] = HandInput(aim, pressed)
        return out

    def _update_ext_anchors(self, t: int) -> None:
        """XR_EXT_spatial_anchor: context (async), anchors at their stored poses, poses from snapshots."""
        names = [
            str(pp.panel.placement.ref)
            for pp in self.core.placed.values()
            if pp.panel.placement.relative_to == "anchor"
        ]
        todo = [n for n in dict.fromkeys(names) if n not in self._ext_entities and n not in self._anchor_failed]
        if self._ext_context is None:
            if not todo:
                return
            try:
                if self._ext_future is None:
                    info, self._ext_cfg = ext_anchors.context_create_info()
                    self._ext_future = xr.create_spatial_context_async_ext(self.session, info)
                    return
                if not ext_anchors.future_ready(self.instance, self._ext_future):
                    return
                done = xr.create_spatial_context_complete_ext(self.session, self._ext_future)
                if int(getattr(done.future_result, "value", done.future_result)) < 0:
                    raise xr.RuntimeFailureError()
                self._ext_context = done.spatial_context
            except xr.XrException as e:  # no context: every anchor panel keeps its stored stage pose
                self._anchor_failed.update(todo)
                self.trace("anchor_failed", anchor="*", error=f"spatial context: {e!r}")
                return
        moved = False
        for name in todo:
            stored = self.core.store.anchors.setdefault(name, Pose())
            try:
                eid, entity = xr.create_spatial_anchor_ext(
                    self._ext_context,
                    xr.SpatialAnchorCreateInfoEXT(base_space=self.base, time=t, pose=_posef(stored)),
                )
            except xr.XrException as e:
                self._anchor_failed.add(name)
                self.trace("anchor_failed", anchor=name, error=repr(e))
                continue
            self._ext_entities[name] = (int(getattr(eid, "value", eid)), entity)
            self.core.anchor_poses[name] = stored
            moved = True
            self.core.store.save()
        if self._ext_entities and (todo or self.core.frame % ext_anchors.LOCATE_EVERY_FRAMES == 0):
            by_id = {eid: name for name, (eid, _) in self._ext_entities.items()}
            snap = None
            try:
                snap = xr.create_spatial_update_snapshot_ext(
                    self._ext_context,
                    ext_anchors.snapshot_info([e for _, e in self._ext_entities.values()], self.base, t),
                )
                for eid, pose in ext_anchors.query_anchor_poses(snap).items():
                    located = by_id.get(eid)
                    if located is not None and self.core.anchor_poses.get(located) != pose:
                        self.core.anchor_poses[located] = pose
                        moved = True
            except xr.XrException as e:  # a failed snapshot costs this update, not the session
                self.trace("anchor_locate_failed", error=repr(e))
            finally:
                if snap is not None:
                    xr.destroy_spatial_snapshot_ext(snap)
        if moved:
            self.core.update_poses()

    def _update_anchors(self, t: int) -> None:
        if self.anchor_kind is None:
            return
        if self.anchor_kind == "ext":
            self._update_ext_anchors(t)
            return
        for pp in self.core.placed.values():
            pl = pp.panel.placement
            name = str(pl.ref)
            if (
                pl.relative_to != "anchor"
                or name in self._anchor_spaces
                or name in self._anchor_failed
                or name in self._anchor_requests.values()
            ):
                continue
            # create the runtime anchor where the store says it is (first run: stage origin)
            stored = self.core.store.anchors.setdefault(name, Pose())
            try:
                if self.anchor_kind == "msft":
                    anchor = xr.create_spatial_anchor_msft(
                        self.session, xr.SpatialAnchorCreateInfoMSFT(space=self.base, pose=_posef(stored), time=t)
                    )
                    self._anchors[name] = anchor
                    self._anchor_spaces[name] = xr.create_spatial_anchor_space_msft(
                        self.session,
                        xr.SpatialAnchorSpaceCreateInfoMSFT(anchor=anchor, pose_in_anchor_space=xr.Posef()),
                    )
                else:  # FB: completes later with EVENT_DATA_SPATIAL_ANCHOR_CREATE_COMPLETE_FB
                    rid = xr.create_spatial_anchor_fb(
                        self.session,
                        xr.SpatialAnchorCreateInfoFB(space=self.base, pose_in_space=_posef(stored), time=t),
                    )
                    self._anchor_requests[_request_id(rid)] = name
            except xr.XrException as e:  # an anchor the runtime will not make must not end the session
                self._anchor_failed.add(name)
                self.trace("anchor_failed", anchor=name, error=str(e))
            self.core.store.save()
        need = xr.SpaceLocationFlags.POSITION_VALID_BIT | xr.SpaceLocationFlags.ORIENTATION_VALID_BIT
        moved = False
        for name, space in self._anchor_spaces.items():
            loc = xr.locate_space(space, self.base, t)
            if (loc.location_flags & need) == need:
                pose = _pose(loc.pose)
                moved |= self.core.anchor_poses.get(name) != pose
                self.core.anchor_poses[name] = pose
        if moved:  # anchors drift as the runtime refines its map; panels follow
            self.core.update_poses()

    def _paint(self, dirty: list[str]) -> dict[str, tuple[Any, Rect | None, bytes | memoryview]]:
        """What to swap in this frame, per panel: its view, the rectangle that differs from what it shows (None:
        nothing to copy) and that rectangle's pixels; finished ones from the painter, and up to
        ``inline_paints`` painted here; the painter is asked for up to ``max_requests`` more, which later
        frames swap in (the other dirty panels are asked for in later frames)."""
        core, painter = self.core, self.painter
        ready: dict[str, tuple[Any, Rect | None, bytes | memoryview]] = {}
        inline, requests = self.inline_paints, self.max_requests
        if painter is not None:
            painter.collect()
            if not painter.working:
                painter = None  # its process is gone: paint here, still at most max_uploads a frame
        for pid in dirty:
            full = len(ready) >= self.max_uploads  # this frame is full: keep (or ask for) the image for a later one
            if full and (painter is None or requests <= 0):
                continue
            view = core.current_view(pid)
            # what its swapchain holds (the full copy it keeps): only the difference to it is painted and copied
            base = core.shown_view(pid) if pid in self.chains else None
            layout = core.placed[pid].layout
            memo = self._rects.get(pid)
            if memo is not None and memo[0] is base and memo[1] is view:  # views are immutable: same objects,
                rect = memo[2]  # same rectangle
            else:
                rect = dirty_rect(base, view, layout)
                self._rects[pid] = (base, view, rect)
            if rect is None:  # drawn exactly as what it shows (e.g. a value that came back): nothing to copy
                ready[pid] = (view, None, b"")
                continue
            done = painter.take(pid) if painter is not None and not full else None
            if done is not None and done[0] == (base, view):
                ready[pid] = (view, rect, done[2])
            elif not full and (painter is None or inline > 0):  # (without a painter every panel is painted here)
                inline -= 1
                if painter is not None:
                    painter.forget(pid)
                ready[pid] = (view, rect, render_region(view, layout, rect))
            elif painter is not None and requests > 0:  # (a stale image taken above is dropped)
                requests -= painter.request(pid, (base, view), view, rect)
        return ready

    def _upload(self, dirty: list[str]) -> tuple[float, float, int, int]:
        """Paint and upload this frame's panels: (paint s, upload s, panels swapped in, bytes copied)."""
        t0 = time.perf_counter()
        ready = self._paint(dirty)
        t1 = time.perf_counter()
        if not ready:
            return t1 - t0, 0.0, 0, 0
        cbs, chains = [], []
        self.gfx.settle()  # last frame's copies read the staging memory written below (long finished by now)
        for pid, (view, rect, pixels) in ready.items():
            if rect is None:  # drawn exactly as what it shows (e.g. a value that came back): nothing to copy
                self.core.committed(pid, view)
                continue
            ch = self.chains.get(pid)
            if ch is None:
                w, h = self.core.placed[pid].panel.pixel_size
                ch = self.chains[pid] = self.gfx.new_swapchain(self.session, w, h, self.format)
                ch.create()
            cbs.append(ch.acquire(pixels, rect))
            chains.append((pid, ch))
        self.gfx.submit(cbs)  # not waited for: released on the same queue, the runtime sees them done
        nbytes = 0
        for pid, ch in chains:
            if self.dump_dir is not None:
                self._dump(pid, ch)
            ch.release()
            view, rect, _ = ready[pid]
            nbytes += ch.uploaded_bytes
            self.core.committed(pid, view, rect=rect, uploaded=ch.uploaded_bytes)
        return t1 - t0, time.perf_counter() - t1, len(chains), nbytes

    def _dump(self, pid: str, ch: Any) -> None:
        from PIL import Image

        raw = ch.read_back()
        assert self.dump_dir is not None
        self.dump_dir.mkdir(parents=True, exist_ok=True)
        path = self.dump_dir / f"{pid}-{self.core.frame:06d}.png"
        Image.frombytes("RGBA", (ch.width, ch.height), raw).save(path)
        self.trace("dump", panel=pid, frame=self.core.frame, path=str(path), image=ch.image_index)

    def _layers(self) -> list[Any]:
        layers = [] if self._passthrough_ptr is None else [self._passthrough_ptr]  # the room first, panels over it
        for pid, pp in self.core.placed.items():
            ch = self.chains.get(pid)
            if ch is None or not pp.visible:
                continue  # never submit a swapchain that has no released image yet
            q = self.quads.get(pid)
            if q is None:
                q = self.quads[pid] = xr.CompositionLayerQuad(
                    layer_flags=QUAD_FLAGS,
                    space=self.base,
                    eye_visibility=xr.EyeVisibility.BOTH,
                    sub_image=xr.SwapchainSubImage(
                        swapchain=ch.swapchain,
                        image_rect=xr.Rect2Di(offset=xr.Offset2Di(0, 0), extent=xr.Extent2Di(ch.width, ch.height)),
                        image_array_index=0,
                    ),
                    size=xr.Extent2Df(pp.panel.width_m, pp.panel.height_m),
                )
                if self.trace:
                    self.trace("layer", panel=pid, flags=[f.name for f in xr.CompositionLayerFlags if f & QUAD_FLAGS])
            if self._quad_pose.get(pid) != pp.pose:  # building a Posef per panel per frame adds up at 100
                q.pose = _posef(pp.pose)
                self._quad_pose[pid] = pp.pose
                if self.trace:
                    self.trace("layer_pose", panel=pid, frame=self.core.frame, pose=pp.pose.to_dict())
            ptr = self._layer_ptrs.get(pid)
            if ptr is None:
                ptr = self._layer_ptrs[pid] = ctypes.pointer(q)
            layers.append(ptr)
        return layers

    def _frame(self) -> None:
        fs = xr.wait_frame(self.session, xr.FrameWaitInfo())
        c0, t0 = time.thread_time(), time.perf_counter()
        if self._last_frame_t is not None:
            self.stats.frame_period_s.append(t0 - self._last_frame_t)
        self._last_frame_t = t0
        t, period = fs.predicted_display_time, fs.predicted_display_period
        if period > 0 and (period < self.stats.refresh_period_ns or not self.stats.refresh_period_ns):
            self.stats.refresh_period_ns = period
        if self.last_display_time is not None and self.stats.refresh_period_ns:
            self.stats.missed.append(max(0, round((t - self.last_display_time) / self.stats.refresh_period_ns) - 1))
        self.last_display_time = t
        xr.begin_frame(self.session, xr.FrameBeginInfo())
        self.core.frame += 1
        if self.stream is not None:
            self.core.apply_stream(self.stream.drain())
        if self.state == xr.SessionState.FOCUSED:
            self.core.input(self._read_input(t))
        self._update_anchors(t)
        render_s = upload_s = 0.0
        layers: list[Any] = []
        n = nbytes = 0
        if fs.should_render:
            dirty = self.core.dirty()
            if dirty:
                render_s, upload_s, n, nbytes = self._upload(dirty)
            layers = self._layers()
        xr.end_frame(
            self.session,
            xr.FrameEndInfo(display_time=t, environment_blend_mode=self.blend_mode, layers=layers),
        )
        total = time.perf_counter() - t0
        self.stats.render_s.append(render_s)
        self.stats.upload_s.append(upload_s)
        self.stats.logic_s.append(total - render_s - upload_s)
        self.stats.cpu_s.append(time.thread_time() - c0)
        self.stats.uploads.append(n)
        self.stats.upload_bytes.append(nbytes)
        if self.on_frame is not None:
            self.on_frame(self)

    def run(self) -> int:
        """Frame loop until the session exits; returns the process exit code."""
        self._last_frame_t = self.last_display_time = None
        # what the bridge has built so far (modules, scene, runtime bindings) lives as long as it does: kept out
        # of the cyclic collector's full passes, which otherwise walk all of it inside a frame (measured: 45-70 ms
        # once every few hundred frames with 100 panels)
        gc.collect()
        gc.freeze()
        if self.stream is not None:
            self.stream.start()
        frames = 0
        exit_sent = False
        exit_deadline = float("inf")
        while True:
            if self.stream is not None and isinstance(self.stream.error, AuthError):
                self.trace("auth_failed", message=str(self.stream.error))
                self._exit_requested = True
                self.exit_code = EXIT_AUTH
            if self.core.fatal is not None and not self._exit_requested:
                self.trace("fatal", message=self.core.fatal[1])
                self.exit_code = self.core.fatal[0]
                self._exit_requested = True
            try:
                self._poll_events()
            except LOST_ERRORS as e:  # e.g. the runtime's service died: every call now fails
                self.trace("runtime_lost", error=type(e).__name__)
                self.exit_code = EXIT_RUNTIME_LOST
                self._lost = True
            if self._lost:
                break
            if self.exit_code is not None and (
                self.state in (xr.SessionState.EXITING, xr.SessionState.LOSS_PENDING)
                or (not self.running and self._exit_requested)
            ):
                break
            if self.max_frames is not None and frames >= self.max_frames:
                self._exit_requested = True
            if self._exit_requested and not exit_sent:
                exit_sent = True
                if self.running:
                    xr.request_exit_session(self.session)  # -> STOPPING -> IDLE -> EXITING
                    exit_deadline = time.monotonic() + EXIT_GRACE_S
                else:
                    self.exit_code = EXIT_OK if self.exit_code is None else self.exit_code
                    break
            elif exit_sent and time.monotonic() > exit_deadline:
                # a runtime that never reaches EXITING must not keep the process (and the hub token) alive
                _LOG.warning("runtime did not end the session within %.0f s; leaving anyway", EXIT_GRACE_S)
                self.exit_code = EXIT_OK if self.exit_code is None else self.exit_code
                break
            if not self.running:
                if self.stream is not None:
                    self.core.apply_stream(self.stream.drain())  # stay current while idle
                time.sleep(0.01)
                continue
            try:
                self._frame()
            except LOST_ERRORS as e:
                # the runtime or headset went away mid-frame; stop cleanly with the "runtime lost" code
                self.trace("runtime_lost", error=type(e).__name__)
                self.exit_code = EXIT_RUNTIME_LOST
                self._lost = True
                break
            frames += 1
        s = self.stats
        # what the runtime paced at and how many of its display periods went by without a frame from us
        self.trace("frames", frames=frames, missed=sum(s.missed), frames_after_a_miss=sum(1 for m in s.missed if m),
                   refresh_period_ns=s.refresh_period_ns or None)
        return EXIT_OK if self.exit_code is None else self.exit_code

    def destroy(self) -> None:
        if self.stream is not None:
            self.stream.stop()
        if self.painter is not None:
            self.painter.close()
        if self.gfx is not None:
            self.gfx.wait_idle()

        def quietly(fn: Callable[..., Any], *args: Any) -> None:
            # after a runtime loss every handle is dead and each call fails; free what we can, keep going
            try:
                fn(*args)
            except xr.XrException as e:
                _LOG.debug("%s during teardown: %s", getattr(fn, "__name__", fn), e)

        for ch in self.chains.values():
            quietly(ch.destroy)
        self.chains.clear()
        for s in self._anchor_spaces.values():
            quietly(xr.destroy_space, s)
        for a in self._anchors.values():
            quietly(xr.destroy_spatial_anchor_msft, a)
        for _, entity in self._ext_entities.values():
            quietly(xr.destroy_spatial_entity_ext, entity)
        if self._ext_context is not None:
            quietly(xr.destroy_spatial_context_ext, self._ext_context)
        if self._passthrough_layer is not None:
            quietly(xr.destroy_passthrough_layer_fb, self._passthrough_layer)
        if self._passthrough is not None:
            quietly(xr.destroy_passthrough_fb, self._passthrough)
        if self.session is not None:
            quietly(xr.destroy_session, self.session)
        if self.gfx is not None:
            self.gfx.destroy()
        if self.instance is not None:
            quietly(xr.destroy_instance, self.instance)
        self.core.store.save()


def install_signal_handlers(bridge: XrBridge) -> None:
    signal.signal(signal.SIGTERM, bridge.request_exit)
    signal.signal(signal.SIGINT, bridge.request_exit)


def summarize(values: Iterable[float]) -> dict[str, float]:
    s = sorted(values)
    if not s:
        return {}
    return {
        "p50_ms": round(1e3 * statistics.median(s), 3),
        "p99_ms": round(1e3 * s[min(len(s) - 1, int(0.99 * len(s)))], 3),
        "mean_ms": round(1e3 * statistics.fmean(s), 3),
        "max_ms": round(1e3 * s[-1], 3),
    }
