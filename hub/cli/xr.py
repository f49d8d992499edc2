"""``qilu-hub xr``: the OpenXR client's subcommand, which lives with the client in ``qilu_hub.xr_bridge.cli``.

Here so the CLI's auto-discovery finds it; ``python -m qilu_hub.xr_bridge xr`` reaches the same code without the hub's
CLI.
"""

from __future__ import annotations

from qilu_hub.xr_bridge.cli import handler, register, stream_url

__all__ = ["handler", "register", "stream_url"]
