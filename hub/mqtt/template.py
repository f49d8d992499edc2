"""MQTT value templates (``value_template`` in discovery payloads), rendered by the hub's one template engine.

Discovery payloads carry Jinja templates; those zigbee2mqtt, ESPHome and Tasmota send are mostly paths into
the JSON payload (``{{ value_json.temperature }}``, ``{{ value_json["state_left"] }}``,
``{{ value_json.ENERGY.Power | round(1) }}``), sometimes with ``{% if %}`` or arithmetic. They run in the
bounded jinja2 sandbox of :mod:`qilu_hub.templates` with ``value`` (the payload text) and ``value_json``
(the payload decoded); hub functions such as ``states()`` are refused when the template is compiled, so the
entity is skipped with a clear reason instead of showing wrong values.
"""

from __future__ import annotations

import json
from typing import Any

from ..templates import MISSING_RESULT, TemplateError, ValueTemplate, compile_value_template, render_value

__all__ = ["MISSING", "Template", "TemplateError", "compile_template"]

MISSING: Any = MISSING_RESULT  # the path is absent in this payload: no update, not an error


class Template:
    """A compiled value template; ``render(payload)`` returns the value, or MISSING."""

    __slots__ = ("_compiled", "source", "uses_json")

    def __init__(self, compiled: ValueTemplate) -> None:
        self._compiled = compiled
        self.source = compiled.source
        self.uses_json = compiled.uses_json

    def render(self, payload: str | bytes | Any) -> Any:
        """Apply to a raw payload (bytes/str), or to already decoded JSON (``uses_json`` only)."""
        if isinstance(payload, bytes | bytearray):
            text = payload.decode("utf-8", "replace")
            data = decode_json(payload) if self.uses_json else None
        elif isinstance(payload, str):
            text, data = payload, decode_json(payload) if self.uses_json else None
        else:  # decoded already (a light's JSON state)
            text, data = json.dumps(payload), payload
        return render_value(self._compiled, text, data)

    def __repr__(self) -> str:
        return f"<Template {self.source!r}>"


def decode_json(payload: str | bytes | bytearray) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise TemplateError(f"payload is not JSON: {err}") from None


def compile_template(source: str | None) -> Template | None:
    """Compile a template; ``None``/empty gives ``None`` (use the raw payload)."""
    if source is None or not source.strip():
        return None
    return Template(compile_value_template(source))
