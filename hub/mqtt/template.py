"""The subset of Home Assistant value templates that MQTT devices publish in practice.

Discovery payloads carry Jinja templates (``value_template``), but the ones that
zigbee2mqtt, ESPHome and Tasmota send are attribute paths into the JSON payload:
``{{ value_json.temperature }}``, ``{{ value_json["state_left"] }}``,
``{{ value_json.ENERGY.Power }}``, sometimes with a filter (``| int``,
``| float``, ``| round(1)``). Those forms are parsed here with no template engine;
anything else (``{% if %}``, arithmetic, other filters) is rejected with
:class:`TemplateError` so the entity is skipped with a clear reason instead of
showing wrong values.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MISSING", "Template", "TemplateError", "compile_template"]


class TemplateError(ValueError):
    """A template outside the supported subset, or a payload it cannot be applied to."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # the path is absent in this payload: no update, not an error

_OUTER = re.compile(r"^\s*\{\{\s*(.*?)\s*\}\}\s*$", re.DOTALL)
_ROOT = re.compile(r"^(value_json|value)\b")
_ATTR = re.compile(r"^\.([A-Za-z_][A-Za-z0-9_]*)")
_ITEM = re.compile(r"""^\[\s*(?:"([^"\\]*)"|'([^'\\]*)'|(-?\d+))\s*\]""")
_FILTER = re.compile(r"^\|\s*([a-z_]+)\s*(?:\(\s*(-?\d+)?\s*\))?")
_FILTERS = frozenset({"int", "float", "round", "lower", "upper", "string", "trim"})


class Template:
    """A compiled template; ``render(payload)`` returns the value, or MISSING."""

    __slots__ = ("filters", "path", "source", "uses_json")

    def __init__(self, source: str, uses_json: bool, path: tuple[str | int, ...],
                 filters: tuple[tuple[str, int | None], ...]) -> None:
        self.source = source
        self.uses_json = uses_json
        self.path = path
        self.filters = filters

    def render(self, payload: str | bytes | Any) -> Any:
        """Apply to a raw payload (bytes/str), or to already decoded JSON (``uses_json`` only)."""
        if self.uses_json:
            data = decode_json(payload) if isinstance(payload, str | bytes | bytearray) else payload
            for step in self.path:
                if isinstance(step, int):
                    if not isinstance(data, list) or not -len(data) <= step < len(data):
                        return MISSING
                    data = data[step]
                else:
                    if not isinstance(data, dict) or step not in data:
                        return MISSING
                    data = data[step]
            value: Any = data
        else:
            value = payload.decode("utf-8", "replace") if isinstance(payload, bytes | bytearray) else payload
        for name, arg in self.filters:
            value = _apply(name, arg, value, self.source)
        return value

    def __repr__(self) -> str:
        return f"<Template {self.source!r}>"


def decode_json(payload: str | bytes | bytearray) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise TemplateError(f"payload is not JSON: {err}") from None


def _apply(name: str, arg: int | None, value: Any, source: str) -> Any:
    try:
        if name == "int":
            return int(float(value)) if not isinstance(value, bool) else int(value)
        if name == "float":
            return float(value)
        if name == "round":
            return round(float(value), arg or 0)
        if name == "string":
            return str(value)
        if name in ("lower", "upper", "trim"):
            text = str(value)
            return text.lower() if name == "lower" else text.upper() if name == "upper" else text.strip()
    except (TypeError, ValueError):
        raise TemplateError(f"{source}: cannot apply {name} to {value!r}") from None
    raise TemplateError(f"{source}: unsupported filter {name!r}")  # pragma: no cover - checked at compile


def compile_template(source: str | None) -> Template | None:
    """Parse a template; ``None``/empty gives ``None`` (use the raw payload)."""
    if source is None or not source.strip():
        return None
    match = _OUTER.match(source)
    if match is None or "{%" in source or "{{" in match.group(1):
        raise TemplateError(f"unsupported template {source!r}: only '{{{{ value_json.path | filter }}}}' is understood")
    expr = match.group(1)
    root = _ROOT.match(expr)
    if root is None:
        raise TemplateError(f"unsupported template {source!r}: must start with value or value_json")
    uses_json = root.group(1) == "value_json"
    rest = expr[root.end():].strip()
    path: list[str | int] = []
    while rest and rest[0] in ".[":
        if not uses_json:
            raise TemplateError(f"unsupported template {source!r}: paths need value_json")
        attr = _ATTR.match(rest)
        if attr:
            path.append(attr.group(1))
            rest = rest[attr.end():]
            continue
        item = _ITEM.match(rest)
        if item is None:
            raise TemplateError(f"unsupported template {source!r}: cannot read the path at {rest!r}")
        dq, sq, num = item.groups()
        path.append(int(num) if num is not None else (dq if dq is not None else sq))
        rest = rest[item.end():]
    rest = rest.strip()
    filters: list[tuple[str, int | None]] = []
    while rest:
        flt = _FILTER.match(rest)
        if flt is None or flt.group(1) not in _FILTERS:
            raise TemplateError(f"unsupported template {source!r}: cannot read {rest!r} "
                                f"(filters understood: {', '.join(sorted(_FILTERS))})")
        filters.append((flt.group(1), int(flt.group(2)) if flt.group(2) is not None else None))
        rest = rest[flt.end():].strip()
    return Template(source, uses_json, tuple(path), tuple(filters))
