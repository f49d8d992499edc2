"""Configuration: a human-edited YAML file in the config directory, validated with line numbers.

The schema is data: each section is a mapping of key to :class:`Field` (or a nested
mapping). Parts of the hub add their own sections with :func:`register_section`.
A bad file never starts the hub and is never rewritten: the error names the file,
the line and the key.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from .const import CONFIG_FILE, DEFAULT_BIND, DEFAULT_PORT
from .file_modes import PRIVATE_DIR, write_private

if TYPE_CHECKING:  # imported where a file is read: a hub without configuration.yaml never loads the parser
    import yaml


class ConfigError(Exception):
    """A configuration problem a person must fix; the message names file, line and key."""

    def __init__(self, path: Path | str, line: int | None, key: str | None, message: str) -> None:
        where = f"{path}" + (f", line {line}" if line else "")
        what = f" key '{key}'" if key else ""
        super().__init__(f"{where}:{what} {message}")
        self.path, self.line, self.key = path, line, key


@dataclass(frozen=True, slots=True)
class Field:
    types: tuple[type, ...]
    default: Any = None
    items: tuple[type, ...] | None = None  # for lists: the type of each item
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    help: str = ""


Schema = dict[str, Union[Field, "Schema"]]


def f(*types: type, default: Any = None, items: tuple[type, ...] | None = None,
      choices: tuple[Any, ...] = (), minimum: float | None = None, help: str = "") -> Field:
    return Field(tuple(types), default, items, choices, minimum, help)


_AREA_ITEM = dict  # each area is a mapping validated by _check_area

SCHEMA: Schema = {
    "hub": {
        "name": f(str, default="Home"),
        "bind": f(str, default=DEFAULT_BIND, help="Address the API listens on"),
        "port": f(int, default=DEFAULT_PORT, minimum=0),
        "tls_certificate": f(str, type(None)),
        "tls_key": f(str, type(None)),
        # YAML reads a bare `off` as false: both mean plain HTTP.
        "tls": f(str, bool, default="off", choices=("off", "auto", False),
                 help="auto: HTTPS with the hub's own name-constrained CA, created on first start (docs/tls.md)"),
        "mdns": f(bool, default=True, help="announce the hub as _qilu-hub._tcp on the LAN (only when it serves the "
                                           "LAN: bind not loopback)"),
        "allowed_origins": f(list, default=[], items=(str,)),
        "trusted_proxies": f(list, default=[], items=(str,),
                             help="Reverse proxies (addresses or CIDRs) whose X-Forwarded-For is believed"),
        # Bounds on what clients may hold (defaults as in hub/api/limits.py; docs/configuration.md explains them).
        "max_connections": f(int, default=512, minimum=1,
                             help="TCP connections the API holds at once (lowered to fit the open-file limit)"),
        "max_connections_per_address": f(int, default=32, minimum=1,
                                         help="TCP connections from one peer address (trusted proxies exempt)"),
        "idle_timeout": f(float, int, default=10.0, minimum=0.1,
                          help="Seconds a connection may wait without a complete request (headers, keep-alive)"),
        "websocket_auth_timeout": f(float, int, default=5.0, minimum=0.1,
                                    help="Seconds a new WebSocket has to authenticate"),
        "max_unauthenticated_per_address": f(int, default=8, minimum=1,
                                             help="WebSockets not yet authenticated, per client address"),
        "latitude": f(float, int, type(None)),
        "longitude": f(float, int, type(None)),
        "time_zone": f(str, default="UTC"),
    },
    "recorder": {
        "keep_days": f(float, int, default=10, minimum=0),
        "max_size_mb": f(float, int, default=64, minimum=1),
        "commit_interval": f(float, int, default=1.0, minimum=0.05),
        "exclude_domains": f(list, default=[], items=(str,)),
        "exclude_entities": f(list, default=[], items=(str,)),
    },
    "logging": {
        "level": f(str, default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    },
    "areas": f(list, default=[], items=(dict,), help="Areas: a list of {name, floor?, pose?}"),
}


def register_section(name: str, schema: Schema) -> None:
    """Add a top-level section (used by the API, discovery, MQTT, recognition, ...)."""
    if name in SCHEMA and SCHEMA[name] != schema:
        raise ValueError(f"config section {name!r} is already registered")
    SCHEMA[name] = schema


def default_config_dir() -> Path:
    if env := os.environ.get("QILU_HUB_CONFIG"):
        return Path(env)
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home())) / "qilu-hub"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "qilu-hub"


def _defaults(schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        if isinstance(spec, Field):
            out[key] = list(spec.default) if isinstance(spec.default, list) else spec.default
        else:
            out[key] = _defaults(spec)
    return out


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _check(path: Path, schema: Schema, node: yaml.Node, prefix: str) -> dict[str, Any]:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(path, _line(node), prefix or None, "must be a mapping of keys to values")
    result = _defaults(schema)
    seen: set[str] = set()
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):  # "? [a, b]: x" is valid YAML but never an option name
            raise ConfigError(path, _line(key_node), prefix or None, "keys must be plain text")
        key = key_node.value
        full = f"{prefix}.{key}" if prefix else str(key)
        if key in seen:
            raise ConfigError(path, _line(key_node), full, "appears twice")
        seen.add(key)
        spec = schema.get(key)
        if spec is None:
            known = ", ".join(sorted(schema))
            raise ConfigError(path, _line(key_node), full, f"is not a known option (known here: {known})")
        if isinstance(spec, dict):
            if isinstance(value_node, yaml.ScalarNode) and value_node.tag.endswith(":null"):
                continue
            result[key] = _check(path, spec, value_node, full)
            continue
        try:
            # Construct from the node itself: re-serialising it can fail on nodes the parser accepted.
            value = yaml.SafeLoader("").construct_document(value_node)
        except yaml.YAMLError as err:
            raise ConfigError(path, _line(value_node), full, f"cannot be read: {err}") from None
        if isinstance(value, int) and not isinstance(value, bool) and float in spec.types and int not in spec.types:
            value = float(value)
        if (isinstance(value, bool) and bool not in spec.types) or not isinstance(value, spec.types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in spec.types)
            raise ConfigError(path, _line(value_node), full, f"must be {names}, not {value!r}")
        if spec.choices and value not in spec.choices:
            raise ConfigError(path, _line(value_node), full, f"must be one of {', '.join(map(str, spec.choices))}")
        if spec.minimum is not None and isinstance(value, int | float) and value < spec.minimum:
            raise ConfigError(path, _line(value_node), full, f"must be at least {spec.minimum}")
        if spec.items is not None and isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, spec.items):
                    item_node = value_node.value[i]
                    raise ConfigError(path, _line(item_node), f"{full}[{i}]",
                                      f"must be {' or '.join(t.__name__ for t in spec.items)}")
        result[key] = value
    return result


def _check_areas(path: Path, areas: list[dict[str, Any]], node: yaml.Node | None) -> None:
    import yaml

    for i, area in enumerate(areas):
        line = None
        if node is not None:
            for key_node, value_node in node.value:
                if key_node.value == "areas" and isinstance(value_node, yaml.SequenceNode):
                    line = _line(value_node.value[i])
        unknown = set(area) - {"name", "floor", "pose"}
        if unknown:
            key = f"areas[{i}].{sorted(unknown)[0]}"
            raise ConfigError(path, line, key, "is not a known option (name, floor, pose)")
        if not isinstance(area.get("name"), str) or not area["name"].strip():
            raise ConfigError(path, line, f"areas[{i}].name", "is required and must be text")
        if area.get("pose") is not None:
            _check_pose(path, line, f"areas[{i}].pose", area["pose"])


_POSE_KEYS = ("x", "y", "z", "qx", "qy", "qz", "qw")


def _check_pose(path: Path, line: int | None, key: str, pose: Any) -> None:
    """An area's frame in the home (XR placement): {x, y, z} in metres, optional unit quaternion qx..qw."""
    if not isinstance(pose, dict):
        raise ConfigError(path, line, key, "must be a mapping {x, y, z, qx?, qy?, qz?, qw?}")
    unknown = set(pose) - set(_POSE_KEYS)
    if unknown:
        raise ConfigError(path, line, f"{key}.{sorted(unknown)[0]}", f"is not a known option ({', '.join(_POSE_KEYS)})")
    for k in _POSE_KEYS:
        v = pose.get(k)
        if v is None and k in ("x", "y", "z"):
            raise ConfigError(path, line, f"{key}.{k}", "is required (metres)")
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)):
            raise ConfigError(path, line, f"{key}.{k}", "must be a finite number")
    q = [float(pose.get(k, 1.0 if k == "qw" else 0.0)) for k in _POSE_KEYS[3:]]
    if abs(math.sqrt(sum(c * c for c in q)) - 1.0) > 1e-3:
        raise ConfigError(path, line, key, "qx, qy, qz, qw must form a unit quaternion")


def load_config(config_dir: Path | str) -> dict[str, Any]:
    """Read ``configuration.yaml`` from the directory (defaults when it is absent)."""
    path = Path(config_dir) / CONFIG_FILE
    if not path.exists():
        return _defaults(SCHEMA)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(path, None, None, f"cannot be read: {err}") from err
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else None
        raise ConfigError(path, line, None, f"is not valid YAML: {err.problem}") from err
    except yaml.YAMLError as err:
        raise ConfigError(path, None, None, f"is not valid YAML: {err}") from err
    if node is None:
        return _defaults(SCHEMA)
    config = _check(path, SCHEMA, node, "")
    _check_areas(path, config.get("areas") or [], node)
    return config


DEFAULT_FILE = """\
# qilu-hub configuration. Every key is optional; see docs/configuration.md.
hub:
  name: Home
  bind: 127.0.0.1     # the API listens on loopback only until you change this
  port: 8123
recorder:
  keep_days: 10
  max_size_mb: 64     # hard cap for the history database (SD cards fill up)
areas:
  - name: Living Room
  - name: Kitchen
  - name: Bedroom
"""


def ensure_config_dir(config_dir: Path | str) -> Path:
    """Create the directory and a commented default file if missing; never overwrite."""
    directory = Path(config_dir)
    directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    path = directory / CONFIG_FILE
    if not path.exists():
        write_private(path, DEFAULT_FILE)  # it will hold the MQTT password: owner-only from the start
    return directory
