"""``qilu-hub service``: the systemd unit that runs the hub on a gateway (show, install, uninstall), and with
``--matter-server`` the unit of its Matter companion (matter-server from the venv `qilu-hub matter server install`
made under the hub's state directory; the hub then reaches it at ``matter: {url: ws://127.0.0.1:5580/ws}``).

The unit is a template in this module, filled with the command of the installation that renders it (the
``qilu-hub`` script beside this interpreter, so a venv under ``/opt`` is what the service runs). Why each
setting is there is said next to it; docs/install.md explains the choices (a static system user rather than
``DynamicUser=``) and reports the exposure score ``systemd-analyze security`` gives the unit.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Final

UNIT_NAME: Final = "qilu-hub.service"
DEFAULT_UNIT_DIR: Final = Path("/etc/systemd/system")
SERVICE_USER: Final = "qilu-hub"
# StateDirectory= makes /var/lib/<this>, owned by User=; it is the hub's config directory.
STATE_DIRECTORY: Final = "qilu-hub"
# ProtectHome=yes hides these from the service, so an interpreter under them cannot start.
_HIDDEN_BY_PROTECT_HOME: Final = (Path("/home"), Path("/root"), Path("/run/user"))

EXIT_USAGE: Final = 2

# The sandbox both units share (the hub's and matter-server's); each adds its own address families.
_SANDBOX: Final = """\
CapabilityBoundingSet=
AmbientCapabilities=
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateMounts=yes
DevicePolicy=closed
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
KeyringMode=private
"""
_SYSTEM_CALLS: Final = """\
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
"""

UNIT_TEMPLATE: Final = """\
# qilu-hub as a system service; written by `qilu-hub service install` (docs/install.md in the sources).
# Needs the system user first:
#   useradd --system --home-dir /var/lib/{state} --no-create-home --shell /usr/sbin/nologin {user}
[Unit]
Description=qilu-hub smart-home and VR hub
Wants=network-online.target
After=network-online.target dbus.service bluetooth.service
# A hub that keeps crashing stops being restarted after 5 tries in 10 minutes (then: systemctl reset-failed).
StartLimitIntervalSec=600
StartLimitBurst=5

[Service]
Type=simple
User={user}
Group={user}
StateDirectory={state}
StateDirectoryMode=0700
WorkingDirectory=/var/lib/{state}
ExecStart={command} --config /var/lib/{state} run
Restart=on-failure
RestartSec=5s
TimeoutStopSec=30s
UMask=0077
Environment=PYTHONUNBUFFERED=1

# Resources: ~45 MiB for the hub, ~40 MiB more with scene recognition; a Pi with 1 GB keeps room for the rest.
MemoryHigh=256M
MemoryMax=384M
TasksMax=256
# The hub raises its soft open-file limit to the hard one and sizes the API's connection cap from it
# (hub/resource_limits.py): 2048 keeps the default 512 connections with a quarter left for the rest.
LimitNOFILE=2048

# Sandbox. No capabilities: BLE goes through BlueZ over D-Bus (a Unix socket), mDNS binds 5353 with
# SO_REUSEADDR and the API a port above 1024, none of which needs one.
{sandbox}# IP for the API, mDNS and LAN drivers; Unix for D-Bus (BlueZ); netlink to list interfaces (zeroconf).
# No AF_BLUETOOTH: bleak never opens an HCI socket itself.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
{system_calls}# Not set: MemoryDenyWriteExecute=yes (libffi closures in ctypes/cffi may need writable code; not tried on
# a gateway), PrivateUsers=yes (D-Bus would see an unmapped user), IPAddressDeny= (a LAN hub),
# ProcSubset=pid (onnxruntime reads /proc/cpuinfo to learn the CPU's features, on ARM in particular).
# @resources is denied: onnxruntime would set thread affinity, but the hub gives it one thread (no affinity).

[Install]
WantedBy=multi-user.target
"""


MATTER_UNIT_NAME: Final = "qilu-hub-matter-server.service"
MATTER_PORT: Final = 5580

MATTER_UNIT_TEMPLATE: Final = """\
# matter-server, qilu-hub's Matter companion, as a system service; written by
# `qilu-hub service install --matter-server` (docs/matter.md in the sources). Its venv comes first:
#   sudo -u {user} qilu-hub --config /var/lib/{state} matter server install
# and the hub's configuration.yaml says:  matter: {{url: "ws://127.0.0.1:{port}/ws"}}
[Unit]
Description=matter-server (Open Home Foundation) for qilu-hub
Wants=network-online.target
After=network-online.target dbus.service bluetooth.service
Before={hub_unit}
StartLimitIntervalSec=600
StartLimitBurst=5

[Service]
Type=simple
User={user}
Group={user}
# The hub's state directory (same user): the venv and the fabric's storage live under matter-server/ there.
StateDirectory={state} {state}/matter-server/chip
StateDirectoryMode=0700
WorkingDirectory=/var/lib/{state}/matter-server
# The CHIP SDK's Linux layer writes /data/chip_*.ini (a fixed path): give it a folder of its own there.
BindPaths=/var/lib/{state}/matter-server/chip:/data
ExecStart=/var/lib/{state}/matter-server/venv/bin/matter-server \\
    --storage-path /var/lib/{state}/matter-server/storage --port {port} --listen-address 127.0.0.1 \\
    --listen-address ::1{interface}
Restart=on-failure
RestartSec=5s
TimeoutStopSec=30s
UMask=0077
# ~130 MiB with a few nodes, ~150 MiB with 40 endpoints (measured, docs/matter.md).
MemoryHigh=256M
MemoryMax=384M
TasksMax=256

# Sandbox as the hub's. Matter is IPv6 (and IPv4) UDP plus mDNS; BLE commissioning goes through BlueZ over
# D-Bus, but the CHIP SDK also opens an HCI socket for it: AF_BLUETOOTH stays allowed.
{sandbox}RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_BLUETOOTH
{system_calls}
[Install]
WantedBy=multi-user.target
"""


def render_matter_unit(port: int = MATTER_PORT, primary_interface: str | None = None) -> str:
    """The matter-server companion's unit; ``primary_interface`` is the LAN interface for IPv6 link-local."""
    interface = f" \\\n    --primary-interface {shlex.quote(primary_interface)}" if primary_interface else ""
    return MATTER_UNIT_TEMPLATE.format(user=SERVICE_USER, state=STATE_DIRECTORY, port=port, interface=interface,
                                       hub_unit=UNIT_NAME, sandbox=_SANDBOX, system_calls=_SYSTEM_CALLS)


def default_command() -> list[str]:
    """The command that starts this installation: its ``qilu-hub`` script, else this interpreter with ``-m``."""
    script = Path(sys.executable).parent / "qilu-hub"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "qilu_hub"]


def render_unit(command: list[str]) -> str:
    """The unit file for ``command`` (the program and any leading arguments that start the hub)."""
    if not command:
        raise ValueError("the service needs a command to run")
    return UNIT_TEMPLATE.format(user=SERVICE_USER, state=STATE_DIRECTORY, command=shlex.join(command),
                                sandbox=_SANDBOX, system_calls=_SYSTEM_CALLS)


def hidden_by_sandbox(command: list[str]) -> Path | None:
    """The directory that hides ``command``'s program from the service (ProtectHome=yes), if any."""
    program = Path(command[0])
    for hidden in _HIDDEN_BY_PROTECT_HOME:
        if program.is_relative_to(hidden):
            return hidden
    return None


def unit_path(prefix: Path | None, unit_dir: Path, name: str = UNIT_NAME) -> Path:
    """Where the unit goes: ``unit_dir``, under ``prefix`` when one is given (a staging root, as DESTDIR)."""
    if prefix is None:
        return unit_dir / name
    return prefix / unit_dir.relative_to(unit_dir.anchor) / name


def register(subparsers: argparse._SubParsersAction) -> None:
    service = subparsers.add_parser("service", help="the systemd unit that runs the hub on a gateway")
    actions = service.add_subparsers(dest="service_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print the unit without installing it")
    _add_command_option(show)
    show.set_defaults(func=cmd_service_show)
    for name, handler, text in (("install", cmd_service_install, "write the unit file"),
                                ("uninstall", cmd_service_uninstall, "remove the unit file")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--unit-dir", type=Path, default=DEFAULT_UNIT_DIR,
                            help=f"directory for {UNIT_NAME} (default: {DEFAULT_UNIT_DIR})")
        action.add_argument("--prefix", type=Path, default=None, metavar="ROOT",
                            help="write under this root instead of / (packaging, tests)")
        if name == "install":
            _add_command_option(action)
        else:
            action.add_argument("--matter-server", action="store_true", help=f"remove {MATTER_UNIT_NAME}")
        action.set_defaults(func=handler)


def _add_command_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exec", dest="exec_command", default=None, metavar="COMMAND",
                        help="command that starts this hub (default: the qilu-hub beside this Python)")
    parser.add_argument("--matter-server", action="store_true",
                        help=f"the Matter companion's unit ({MATTER_UNIT_NAME}) instead of the hub's")
    parser.add_argument("--primary-interface", default=None, metavar="IFACE",
                        help="with --matter-server: the LAN interface matter-server uses (e.g. eth0)")


def _unit_text(args: argparse.Namespace, command: list[str]) -> str:
    if getattr(args, "matter_server", False):
        return render_matter_unit(primary_interface=args.primary_interface)
    return render_unit(command)


def _unit_name(args: argparse.Namespace) -> str:
    return MATTER_UNIT_NAME if getattr(args, "matter_server", False) else UNIT_NAME


def _command(args: argparse.Namespace) -> list[str]:
    return shlex.split(args.exec_command) if args.exec_command else default_command()


def cmd_service_show(args: argparse.Namespace) -> int:
    command = _command(args)
    if hidden := hidden_by_sandbox(command):
        print(f"qilu-hub: note: {command[0]} is under {hidden}, which the service cannot see (ProtectHome=yes); "
              "install into a venv outside it, e.g. /opt/qilu-hub", file=sys.stderr)
    sys.stdout.write(_unit_text(args, command))
    return 0


def cmd_service_install(args: argparse.Namespace) -> int:
    command = _command(args)
    if (hidden := hidden_by_sandbox(command)) and not args.matter_server:
        print(f"qilu-hub: {command[0]} is under {hidden}, which the service cannot see (ProtectHome=yes); "
              "install qilu-hub into a venv outside it (e.g. python3 -m venv /opt/qilu-hub) and run that "
              "one's `qilu-hub service install`", file=sys.stderr)
        return EXIT_USAGE
    path = unit_path(args.prefix, args.unit_dir, _unit_name(args))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_unit_text(args, command), encoding="utf-8")
        path.chmod(0o644)
    except OSError as err:
        print(f"qilu-hub: cannot write {path}: {err.strerror or err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {path}")
    if args.prefix is None:
        print("next, as root:")
        print(f"  id {SERVICE_USER} >/dev/null 2>&1 || useradd --system --home-dir /var/lib/{STATE_DIRECTORY} "
              f"--no-create-home --shell /usr/sbin/nologin {SERVICE_USER}")
        if args.matter_server:
            print(f"  sudo -u {SERVICE_USER} {shlex.join(command)} --config /var/lib/{STATE_DIRECTORY} "
                  "matter server install")
        print(f"  systemctl daemon-reload && systemctl enable --now {_unit_name(args)}")
    return 0


def cmd_service_uninstall(args: argparse.Namespace) -> int:
    path = unit_path(args.prefix, args.unit_dir, _unit_name(args))
    # What `systemctl enable` made; left behind it would point at nothing.
    path.parent.joinpath("multi-user.target.wants", _unit_name(args)).unlink(missing_ok=True)
    try:
        path.unlink()
    except FileNotFoundError:
        print(f"qilu-hub: no unit at {path}; nothing to remove")
        return 0
    except OSError as err:
        print(f"qilu-hub: cannot remove {path}: {err.strerror or err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"removed {path}")
    if args.prefix is None:
        print(f"then, as root: systemctl stop {_unit_name(args)}; systemctl daemon-reload "
              f"(the configuration stays in /var/lib/{STATE_DIRECTORY})")
    return 0
