"""The ``matter:`` config section: where matter-server is, or how the hub runs it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import f, register_section

SERVER_MODES = ("none", "managed")

register_section("matter", {
    "server": f(str, default="none", choices=SERVER_MODES,
                help="managed: the hub starts and supervises matter-server from its venv; none: use url, or no Matter"),
    "url": f(str, type(None), help="WebSocket of a matter-server the hub does not manage (ws://host:5580/ws)"),
    "venv": f(str, type(None), help="matter-server's venv (default: matter-server/venv in the config folder)"),
    "port": f(int, default=5580, minimum=1, help="Port of the managed server's WebSocket (on 127.0.0.1)"),
    "primary_interface": f(str, type(None), help="Network interface the managed server uses for IPv6 link-local"),
    "paa_root_cert_dir": f(str, type(None),
                           help="PAA root certificates (default: the server downloads them; offline, give a folder)"),
    "bluetooth_adapter": f(int, type(None), minimum=0, help="hciN for BLE commissioning (needs a Bluetooth adapter)"),
    "log_level": f(str, default="info", choices=("critical", "error", "warning", "info", "debug")),
})


@dataclass(slots=True)
class MatterSettings:
    server: str = "none"
    url: str | None = None
    venv: Path | None = None
    port: int = 5580
    primary_interface: str | None = None
    paa_root_cert_dir: Path | None = None
    bluetooth_adapter: int | None = None
    log_level: str = "info"

    @property
    def enabled(self) -> bool:
        return self.server == "managed" or bool(self.url)

    @property
    def managed(self) -> bool:
        return self.server == "managed"

    def ws_url(self) -> str:
        # 127.0.0.1, never "localhost": aiohttp resolves with AI_ADDRCONFIG, and a host whose only non-loopback
        # addresses are IPv6 ignores the IPv4-only localhost entry of /etc/hosts.
        return self.url or f"ws://127.0.0.1:{self.port}/ws"

    @classmethod
    def from_config(cls, section: dict[str, Any] | None, config_dir: Path) -> MatterSettings:
        section = section or {}
        venv = section.get("venv")
        paa = section.get("paa_root_cert_dir")
        return cls(
            server=section.get("server") or "none", url=section.get("url"),
            venv=Path(venv) if venv else config_dir / "matter-server" / "venv",
            port=int(section.get("port") or 5580), primary_interface=section.get("primary_interface"),
            paa_root_cert_dir=Path(paa) if paa else None, bluetooth_adapter=section.get("bluetooth_adapter"),
            log_level=section.get("log_level") or "info",
        )
