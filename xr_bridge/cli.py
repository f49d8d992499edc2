"""`qilu-hub xr`: run an immersive control scene in an OpenXR headset, connected to the hub's stream."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_LOG = logging.getLogger("qilu.xr")


def _default_placements() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "qilu-hub", "xr_placements.json")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("xr", help="show an immersive scene's panels in an OpenXR headset", description=__doc__)
    p.add_argument("--hub", required=True, help="hub stream URL, e.g. ws://127.0.0.1:8123/api/stream")
    p.add_argument("--token", default=None,
                   help="access token (default: $QILU_HUB_TOKEN; $QILU_TOKEN is still read but deprecated)")
    p.add_argument("--ca", type=Path, metavar="FILE",
                   help="for wss:// to a hub with its own CA (hub.tls: auto): the CA certificate to trust, e.g. "
                        "downloaded from /api/tls/ca.crt?format=pem (default: the system's CAs)")
    p.add_argument("--scene", required=True, type=Path, help="scene file (YAML, see docs/xr.md)")
    p.add_argument("--name", help="which immersive scene in the file (default: the first)")
    p.add_argument(
        "--placements",
        default=_default_placements(),
        help="JSON file persisting anchor/panel placement (default: %(default)s)",
    )
    p.add_argument("--trace", type=Path, help="write a JSON-lines event log here (debugging, tests)")
    p.add_argument(
        "--dump-dir",
        type=Path,
        help="read every uploaded panel back from its swapchain and save it as PNG (debugging, tests)",
    )
    p.add_argument("--max-frames", type=int, help="exit cleanly after this many frames")
    p.add_argument(
        "--graphics",
        choices=("auto", "vulkan", "opengl"),
        default="auto",
        help="graphics binding: Vulkan when the runtime offers it, else OpenGL on EGL (default: %(default)s)",
    )
    p.add_argument(
        "--space",
        choices=("auto", "stage", "local_floor", "local"),
        default="auto",
        help="reference space the panels live in: auto takes STAGE (fixed to the room), else LOCAL_FLOOR, else "
        "LOCAL moved down by --eye-height (default: %(default)s)",
    )
    p.add_argument("--eye-height", type=float, default=1.6, metavar="M",
                   help="with a LOCAL space only: its origin's height above the floor (default: %(default)s)")
    p.add_argument(
        "--blend",
        default="alpha_blend,passthrough,additive,opaque",
        help="environment blend modes in order of preference; the first the runtime offers is used "
        "(passthrough: XR_FB_passthrough under an opaque frame) (default: %(default)s)",
    )
    p.add_argument(
        "--whole-panel-uploads",
        action="store_true",
        help="copy whole panels into swapchain images, never only what changed: for a runtime that does not keep "
        "an image's pixels between acquires (OpenXR does not promise it; Monado does)",
    )
    p.set_defaults(func=handler)


def stream_url(hub: str) -> str:
    """Accept ws://host:port/api/stream as documented, and also http(s)://host:port or host:port."""
    if "://" not in hub:
        hub = f"ws://{hub}"
    scheme, rest = hub.split("://", 1)
    scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    if "/" not in rest.rstrip("/"):
        rest = rest.rstrip("/") + "/api/stream"
    return f"{scheme}://{rest}"


def _snapshot_check(scene_path: Path, text: str, name: str | None) -> Any:
    from qilu_hub.scenes import FixedEntityCatalog, SceneError, parse_scene_text

    def check(states: Mapping[str, Any]) -> str | None:
        # the stream only tells which entities exist (commands are checked by the hub on each call)
        try:
            parse_scene_text(text, str(scene_path), FixedEntityCatalog(list(states)))
        except SceneError as e:
            return str(e)
        return None

    return check


def handler(args: argparse.Namespace) -> int:
    from qilu_hub.scenes import SceneError, parse_scene_text
    from qilu_hub.xr_bridge.core import BridgeCore, Trace
    from qilu_hub.xr_bridge.environment import parse_blend
    from qilu_hub.xr_bridge.placement import PlacementStore
    from qilu_hub.xr_bridge.runtime import (
        EXIT_NO_GRAPHICS,
        EXIT_NO_RUNTIME,
        EXIT_SCENE,
        GraphicsUnsupportedError,
        NoRuntimeError,
        XrBridge,
        install_signal_handlers,
    )
    from qilu_hub.xr_bridge.stream import StreamThread
    from qilu_hub.xr_bridge.swapchains import ImageDamage

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ImageDamage.partial = not args.whole_panel_uploads
    try:
        blend = parse_blend(args.blend)
    except ValueError as e:
        print(f"qilu-hub xr: --blend: {e}", file=sys.stderr)
        return 2
    try:
        text = args.scene.read_text(encoding="utf-8")
        sf = parse_scene_text(text, str(args.scene))
        scene = sf.immersive(args.name)
    except OSError as e:
        print(f"qilu-hub xr: cannot read {args.scene}: {e.strerror}", file=sys.stderr)
        return EXIT_SCENE
    except SceneError as e:
        print(f"qilu-hub xr: scene refused:\n{e}", file=sys.stderr)
        return EXIT_SCENE
    except KeyError:
        print(f"qilu-hub xr: {args.scene}: no immersive scene {args.name or ''}".rstrip(), file=sys.stderr)
        return EXIT_SCENE
    trace_file = args.trace.open("w", encoding="utf-8") if args.trace else None
    trace = Trace(trace_file)
    from qilu_hub.tokens import DEPRECATED_TOKEN_ENV, TOKEN_ENV, token_from_environment

    token = args.token
    if not token:
        token, deprecated = token_from_environment()
        if deprecated:
            print(f"qilu-hub xr: ${DEPRECATED_TOKEN_ENV} is deprecated; set ${TOKEN_ENV} instead", file=sys.stderr)
    ssl_context = None
    if args.ca is not None:
        import ssl

        try:
            ssl_context = ssl.create_default_context(cafile=str(args.ca))
        except (OSError, ssl.SSLError) as e:
            print(f"qilu-hub xr: --ca {args.ca}: cannot be loaded ({e})", file=sys.stderr)
            return 2
    stream = StreamThread(stream_url(args.hub), token or "", list(scene.entities), ssl_context=ssl_context)
    core = BridgeCore(
        scene,
        PlacementStore.load(args.placements),
        stream.call,
        trace,
        snapshot_check=_snapshot_check(args.scene, text, args.name),
    )
    bridge = XrBridge(core, stream, trace, args.dump_dir, args.max_frames, graphics=args.graphics,
                      space=args.space, eye_height=args.eye_height, blend=blend)
    try:
        try:
            bridge.create()
        except NoRuntimeError as e:
            print(f"qilu-hub xr: {e}", file=sys.stderr)
            return EXIT_NO_RUNTIME
        except GraphicsUnsupportedError as e:
            print(f"qilu-hub xr: {e}", file=sys.stderr)
            return EXIT_NO_GRAPHICS
        install_signal_handlers(bridge)
        code = bridge.run()
        if core.fatal is not None:
            print(f"qilu-hub xr: {core.fatal[1]}", file=sys.stderr)
        elif stream.error is not None:
            print(f"qilu-hub xr: hub refused the token: {stream.error}", file=sys.stderr)
        return code
    finally:
        bridge.destroy()
        if trace_file is not None:
            trace_file.close()
