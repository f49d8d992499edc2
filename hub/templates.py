"""Home Assistant-style Jinja templates, rendered in jinja2's immutable sandbox: one engine, two uses.

* ``render_template`` on the HA WebSocket (``hub/api/render_template.py``): the hub's states and registries
  through HA's template functions (``states()``, ``states.light``, ``is_state()``, ``state_attr()``,
  ``area_entities()``, ``area_name()``, ``area_id()``, ``device_attr()``, ``device_id()``,
  ``integration_entities()``, ``expand()`` ...), limited to what the caller's token may see, recording what it
  read (:class:`RenderInfo`) so that a subscription re-renders when one of those entities changes.
* MQTT value templates (``hub/mqtt/template.py``): ``value`` and ``value_json`` of a payload, no hub.

The sandbox refuses private attributes and mutating methods; on top of it a render is bounded: a budget of
loop iterations and calls, and of time (a loop nested in a loop cannot hold the event loop), a cap on the
output, and size checks on the operations that multiply sizes (``*``, ``**``, ``%``, ``format``, ``replace``,
``join``, ``center``...). ``range`` is the sandbox's (at most 100,000 items). No template function reads the
clock, so a result depends on the states only.
"""

from __future__ import annotations

import ast
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, Undefined, UndefinedError, meta, nodes, pass_context
from jinja2.exceptions import SecurityError, TemplateAssertionError, TemplateRuntimeError
from jinja2.nativetypes import NativeCodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .model import slugify
from .states import State, state_text

if TYPE_CHECKING:
    from jinja2 import Template

    from .core import Hub

__all__ = [
    "MAX_OUTPUT",
    "MAX_SOURCE",
    "MAX_STEPS",
    "Compiled",
    "HubView",
    "RenderInfo",
    "TemplateError",
    "compile_hub_template",
    "compile_value_template",
    "parse_result",
    "render_hub",
    "render_value",
]

MAX_SOURCE = 64 * 1024  # characters of template text
MAX_STEPS = 200_000  # loop iterations (and calls, at CALL_STEPS each) per render
CALL_STEPS = 10  # a call costs about ten loop iterations
MAX_RENDER_SECONDS = 1.0  # of the event loop's time, whatever the steps
MAX_OUTPUT = 256 * 1024  # characters rendered
MAX_SIZE = 100_000  # characters or items one size-multiplying operation may produce
_FILENAME = "<qilu-template>"


class TemplateError(ValueError):
    """A template that cannot be compiled, or a render that failed or went over its budget."""


# -- the bounded sandbox ------------------------------------------------------------------------
def _too_big(what: str) -> TemplateError:
    return TemplateError(f"{what} would be larger than {MAX_SIZE} characters or items")


def _check_size(size: float, what: str) -> None:
    if size > MAX_SIZE:
        raise _too_big(what)


_WIDTH = re.compile(r"(\d+)")


def _check_format_widths(fmt: str) -> None:
    """``"%99999999d"`` and ``"{:>99999999}"`` allocate their width: refuse widths beyond MAX_SIZE."""
    for digits in _WIDTH.findall(fmt):
        if len(digits) > 6 or int(digits) > MAX_SIZE:
            raise _too_big("a format width")


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


_SIZED_STR_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map",
                                "replace", "join"})


class _Sandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox, with native single-value results and size checks on the operators and
    methods that can allocate far more than their input."""

    code_generator_class = NativeCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if _sized(seq) and isinstance(times, int):
                    _check_size(_sized(seq) * times, "a repetition")
        elif operator == "**":
            if isinstance(left, int | float) and isinstance(right, int | float) and abs(left) > 1:
                _check_size(abs(right) * math.log2(abs(left)) / 8, "a power (in bytes)")
        elif operator == "%" and isinstance(left, str):
            _check_format_widths(left)
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # In data, a key wins over a dict method of the same name: ``value_json.values`` is the payload's
        # "values", not dict.values (which jinja2 would try first).
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            _check_format_widths(obj)  # the sandbox hands out its own wrapper, which call() cannot recognise
        return super().getattr(obj, attribute)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = __context.get(_BUDGET)
        if isinstance(budget, _StepBudget):
            budget.spend(CALL_STEPS)
        name = getattr(__obj, "__name__", "")
        if name in _SIZED_STR_METHODS and isinstance(getattr(__obj, "__self__", None), str):
            _check_str_method(__obj.__self__, name, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _check_str_method(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        _check_size(args[0], f"str.{name}")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        _check_size(text.count("\t") * (size if isinstance(size, int) else 8) + len(text), "str.expandtabs")
    elif name in ("format", "format_map"):
        _check_format_widths(text)
    elif name == "replace" and len(args) >= 2:
        _check_size(len(text) + text.count(str(args[0]) or " ") * len(str(args[1])), "str.replace")
    elif name == "join" and args:
        items = args[0]
        if isinstance(items, list | tuple):
            _check_size(sum(_sized(i) for i in items) + len(text) * len(items), "str.join")


class _StepBudget:
    """The work one render may do: steps (a loop iteration is one, a call of a macro, function or method is
    ``CALL_STEPS``) and wall time. A loop nested in a loop, or a macro calling itself twice, runs out instead of
    holding the event loop; the time limit catches steps that are each expensive (a 100,000-item list per
    iteration), which no count can price."""

    __slots__ = ("deadline", "left", "taken")

    def __init__(self, steps: int, seconds: float) -> None:
        self.left = steps
        self.taken = 0
        self.deadline = time.monotonic() + seconds

    def spend(self, steps: int = 1) -> None:
        self.left -= steps
        self.taken += 1
        if self.left < 0:
            raise TemplateError(f"template is too expensive to render (over {MAX_STEPS} steps)")
        if not self.taken & 63 and time.monotonic() > self.deadline:
            raise TemplateError(f"template is too expensive to render (over {MAX_RENDER_SECONDS:g} s)")

    def iterate(self, items: Any) -> Iterator[Any]:
        """What every ``{% for %}`` loops over (the compiler wraps each loop's iterable in it)."""
        for item in items:
            self.spend()
            yield item


_BUDGET = "__qilu_budget"  # the render's budget, in the template's context
_BUDGETED_ITER = "__qilu_loop"  # the budget's iterate(), for the rewritten loops


# -- filters and functions without the hub ------------------------------------------------------
_NO_DEFAULT: Any = object()


def _number(kind: Callable[[Any], Any], name: str) -> Callable[..., Any]:
    def convert(value: Any, default: Any = _NO_DEFAULT) -> Any:
        try:
            if kind is int and isinstance(value, str) and not value.strip().lstrip("+-").isdigit():
                return int(float(value))
            if kind is int and isinstance(value, float):
                return int(value)
            return kind(value)
        except (TypeError, ValueError, OverflowError):
            if default is _NO_DEFAULT:
                raise TemplateError(f"cannot apply {name} to {value!r}") from None
            return default
    convert.__name__ = name
    return convert


_to_int = _number(int, "int")
_to_float = _number(float, "float")


def _round(value: Any, precision: int = 0, method: str = "common", default: Any = _NO_DEFAULT) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        if default is _NO_DEFAULT:
            raise TemplateError(f"cannot apply round to {value!r}") from None
        return default
    if method == "floor":
        factor = 10 ** precision
        return math.floor(number * factor) / factor
    if method == "ceil":
        factor = 10 ** precision
        return math.ceil(number * factor) / factor
    if method == "half":
        return round(number * 2) / 2
    return round(number, precision)


def _to_bool(value: Any, default: Any = _NO_DEFAULT) -> Any:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "enable"):
        return True
    if text in ("0", "false", "no", "off", "disable", "none", ""):
        return False
    if default is _NO_DEFAULT:
        raise TemplateError(f"cannot apply bool to {value!r}")
    return default


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _to_json(value: Any, **kwargs: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=bool(kwargs.get("sort_keys")), default=str)
    except (TypeError, ValueError) as err:
        raise TemplateError(f"cannot write JSON: {err}") from None


def _from_json(value: Any) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError) as err:
        raise TemplateError(f"not JSON: {err}") from None


def _iif(value: Any, if_true: Any = True, if_false: Any = False, if_none: Any = _NO_DEFAULT) -> Any:
    if value is None and if_none is not _NO_DEFAULT:
        return if_none
    return if_true if value else if_false


def _join(items: Iterable[Any], separator: str = "", attribute: Any = None) -> str:
    values = list(items)
    if attribute is not None:
        values = [getattr(v, attribute, None) if not isinstance(v, Mapping) else v.get(attribute) for v in values]
    texts = [str(v) for v in values]
    _check_size(sum(map(len, texts)) + len(separator) * len(texts), "join")
    return separator.join(texts)


def _replace(text: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old, new = str(text), str(old), str(new)
    _check_size(len(text) + (text.count(old) if old else len(text) + 1) * len(new), "replace")
    return text.replace(old, new) if count is None else text.replace(old, new, count)


def _center(text: Any, width: int = 80) -> str:
    _check_size(width, "center")
    return str(text).center(width)


def _indent(text: Any, width: Any = 4, first: bool = False, blank: bool = False) -> str:
    pad = width if isinstance(width, str) else " " * min(int(width), MAX_SIZE)
    lines = str(text).split("\n")
    _check_size(len(str(text)) + len(pad) * len(lines), "indent")
    out = [(pad + line if (i > 0 or first) and (line or blank) else line) for i, line in enumerate(lines)]
    return "\n".join(out)


def _format(text: Any, *args: Any, **kwargs: Any) -> str:
    _check_format_widths(str(text))
    return str(text) % (kwargs or args)


def _sum(items: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
    total = start
    for item in items:
        value = item.get(attribute) if attribute is not None and isinstance(item, Mapping) else item
        total = total + value
        _check_size(_sized(total), "sum")
    return total


_GENERIC_FILTERS: dict[str, Callable[..., Any]] = {
    "int": _to_int, "float": _to_float, "round": _round, "bool": _to_bool, "is_number": _is_number,
    "to_json": _to_json, "tojson": _to_json, "from_json": _from_json, "iif": _iif, "join": _join,
    "replace": _replace, "center": _center, "indent": _indent, "format": _format, "sum": _sum,
    "slugify": lambda value, separator="_": slugify(str(value)).replace("_", separator),
    "is_defined": lambda value: not isinstance(value, Undefined),
}
_GENERIC_GLOBALS: dict[str, Any] = {
    "int": _to_int, "float": _to_float, "bool": _to_bool, "is_number": _is_number, "iif": _iif,
    "min": lambda *a, **k: min(*a, **k), "max": lambda *a, **k: max(*a, **k),
}


def _environment(undefined: type[Undefined]) -> _Sandbox:
    env = _Sandbox(undefined=undefined, autoescape=False, keep_trailing_newline=False)
    env.globals.pop("lipsum", None)  # it can be asked for any number of paragraphs
    env.filters.update(_GENERIC_FILTERS)
    env.globals.update(_GENERIC_GLOBALS)
    return env


_ENV = _environment(ChainableUndefined)
_VALUE_NAMES = frozenset({"value", "value_json"})


class Compiled:
    """A compiled template and its globals merged once (jinja2 would merge them on every render)."""

    __slots__ = ("globals", "source", "template")

    def __init__(self, source: str, template: Template) -> None:
        self.source = source
        self.template = template
        self.globals = dict(template.globals)


def _compile(source: Any, allowed: frozenset[str], env: _Sandbox, what: str) -> Compiled:
    if not isinstance(source, str):
        raise TemplateError(f"{what} must be text")
    if len(source) > MAX_SOURCE:
        raise TemplateError(f"{what} is longer than {MAX_SOURCE} characters")
    try:
        tree = env.parse(source)
        unknown = _names_read(tree) - allowed - set(env.globals)
        if unknown:
            raise TemplateError(f"unsupported template {source!r}: {', '.join(sorted(unknown))} "
                                f"{'is' if len(unknown) == 1 else 'are'} not available here")
        _budget_loops(tree, source)
        code = env.compile(tree, filename=_FILENAME)
        return Compiled(source, env.template_class.from_code(env, code, env.make_globals(None), None))
    except (TemplateSyntaxError, TemplateAssertionError) as err:
        raise TemplateError(f"unsupported template {source!r}: {err.message or err}") from None


def _budget_loops(tree: nodes.Template, source: str) -> None:
    """Make every loop iterate through the render's budget. Recursive loops are refused: their recursive calls
    take iterables the rewrite cannot reach."""
    for loop in tree.find_all(nodes.For):
        if loop.recursive:
            raise TemplateError(f"unsupported template {source!r}: recursive loops are not supported")
        name = nodes.Name(_BUDGETED_ITER, "load", lineno=loop.lineno)
        loop.iter = nodes.Call(name, [loop.iter], [], None, None, lineno=loop.lineno)


def _names_read(tree: nodes.Template) -> set[str]:
    """Variables a template reads that it does not set itself (loop and ``set`` variables)."""
    return set(meta.find_undeclared_variables(tree))


# -- rendering ----------------------------------------------------------------------------------
class _Missing(Exception):
    """An MQTT value path absent from the payload."""


def _chunks(compiled: Compiled, variables: Mapping[str, Any]) -> list[Any]:
    """Run a template under its step budget, collecting its output pieces (bounded in size)."""
    template = compiled.template
    budget = _StepBudget(MAX_STEPS, MAX_RENDER_SECONDS)
    context = template.new_context({**compiled.globals, **variables, _BUDGET: budget,
                                    _BUDGETED_ITER: budget.iterate}, shared=True)
    out: list[Any] = []
    size = 0
    try:
        for piece in template.root_render_func(context):
            out.append(piece)
            size += len(piece) if isinstance(piece, str) else 16
            if size > MAX_OUTPUT:
                raise TemplateError(f"template output is longer than {MAX_OUTPUT} characters")
    except TemplateError:
        raise
    except UndefinedError as err:
        raise _Missing(str(err)) from None
    except (SecurityError, TemplateRuntimeError) as err:
        raise TemplateError(f"refused by the sandbox: {err}") from None
    except RecursionError:
        raise TemplateError("template recursion is too deep") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as err:
        raise TemplateError(f"{type(err).__name__}: {err}") from None
    return out


def _text(pieces: list[Any]) -> str:
    return "".join("" if isinstance(p, Undefined) else str(p) for p in pieces)


_NUMERIC = re.compile(r"^[+-]?(?!0\d)\d*(?:\.\d*)?(?:[eE][+-]?\d+)?$")


def parse_result(text: str) -> Any:
    """Home Assistant's reading of a rendered template: text that is a Python literal (a number, a list, a dict,
    true/false as ``True``/``False``) becomes that value; anything else, and numbers with leading zeros
    ("0123", a PIN), stay text."""
    stripped = text.strip()
    if not stripped or len(stripped) > MAX_OUTPUT:
        return text
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    if isinstance(value, str | complex | bytes):
        return text
    if isinstance(value, int | float) and not isinstance(value, bool) and not _NUMERIC.match(stripped):
        return text
    return value


# -- MQTT value templates -----------------------------------------------------------------------
class ValueTemplate:
    """A compiled MQTT value template; :func:`render_value` applies it to one payload."""

    __slots__ = ("_template", "source", "uses_json")

    def __init__(self, source: str, template: Compiled, uses_json: bool) -> None:
        self.source = source
        self._template = template
        self.uses_json = uses_json


def compile_value_template(source: str) -> ValueTemplate:
    """Compile an MQTT value template: ``value`` (the payload text) and ``value_json`` (it decoded) and the
    generic filters; refused: hub functions (``states()``), syntax errors, text with no ``{{ }}``/``{% %}``."""
    if "{{" not in source and "{%" not in source:
        raise TemplateError(f"unsupported template {source!r}: it has no {{{{ }}}} expression, so it would "
                            "ignore the payload")
    template = _compile(source, _VALUE_NAMES, _ENV, "value_template")
    uses_json = "value_json" in _names_read(_ENV.parse(source))
    return ValueTemplate(source, template, uses_json)


MISSING_RESULT: Any = object()  # what render_value gives for a path absent in the payload


def render_value(template: ValueTemplate, value: str, value_json: Any) -> Any:
    """One expression gives its value as is (``{{ value_json.t }}`` → 21.5, a dict stays a dict); several
    pieces give text. A path absent from the payload gives ``MISSING_RESULT``."""
    try:
        pieces = _chunks(template._template, {"value": value, "value_json": value_json})
    except _Missing:
        return MISSING_RESULT
    if len(pieces) == 1:
        return MISSING_RESULT if isinstance(pieces[0], Undefined) else pieces[0]
    if pieces and all(isinstance(p, Undefined) for p in pieces):
        return MISSING_RESULT
    return _text(pieces)


# -- the hub's states and registries ------------------------------------------------------------
class RenderInfo:
    """What one render read: re-render when one of these changes (HA's ``listeners``)."""

    __slots__ = ("all_states", "domains", "entities", "registries")

    def __init__(self) -> None:
        self.entities: set[str] = set()
        self.domains: set[str] = set()
        self.all_states = False
        self.registries = False

    def listeners(self) -> dict[str, Any]:
        return {"all": self.all_states, "domains": sorted(self.domains), "entities": sorted(self.entities),
                "time": False}

    def wants(self, entity_id: str) -> bool:
        return self.all_states or entity_id in self.entities or entity_id.split(".", 1)[0] in self.domains


def _iso(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


class TemplateState:
    """A state as templates see it (HA's ``TemplateState``): read-only; its fields are worked out when read, so
    a loop over a thousand states that looks at one field pays for that field only."""

    __slots__ = ("_name", "_state", "domain", "entity_id", "object_id")

    def __init__(self, state: State, name: Callable[[State], str]) -> None:
        self._state = state
        self._name = name
        self.entity_id = state.entity_id
        self.domain, self.object_id = state.entity_id.split(".", 1)

    @property
    def state(self) -> str:
        return state_text(self._state.value)

    @property
    def attributes(self) -> dict[str, Any]:
        return dict(self._state.attributes)

    @property
    def name(self) -> str:
        return self._name(self._state)

    @property
    def last_changed(self) -> datetime:
        return _iso(self._state.last_changed)

    @property
    def last_updated(self) -> datetime:
        return _iso(self._state.last_updated)

    @property
    def state_with_unit(self) -> str:
        unit = self._state.attributes.get("unit_of_measurement")
        return f"{self.state} {unit}" if unit else self.state

    def __str__(self) -> str:
        return f"<template TemplateState({self.entity_id}={self.state})>"


class HubView:
    """The hub as one render sees it: only what ``can_see`` allows, recording what was read."""

    __slots__ = ("_can_see", "hub", "info")

    def __init__(self, hub: Hub, can_see: Callable[[str], bool] | None = None) -> None:
        self.hub = hub
        self._can_see = can_see
        self.info = RenderInfo()

    def visible(self, entity_id: str) -> bool:
        return self._can_see is None or self._can_see(entity_id)

    def state(self, entity_id: Any) -> TemplateState | None:
        if not isinstance(entity_id, str):
            return None
        entity_id = entity_id.lower()
        self.info.entities.add(entity_id)
        found = self.hub.states.get(entity_id)
        if found is None or not self.visible(entity_id):
            return None
        return self._wrap(found)

    def _wrap(self, state: State) -> TemplateState:
        return TemplateState(state, self._name_of)

    def _name_of(self, state: State) -> str:
        name = state.attributes.get("friendly_name")
        if isinstance(name, str):
            return name
        entity = self.hub.entities.get(state.entity_id)
        return entity.display_name if entity is not None else state.entity_id.split(".", 1)[1].replace("_", " ")

    def domain_states(self, domain: str) -> list[TemplateState]:
        self.info.domains.add(domain)
        found = [s for s in self.hub.states.all() if s.entity_id.startswith(domain + ".") and self.visible(s.entity_id)]
        return [self._wrap(s) for s in sorted(found, key=lambda s: s.entity_id)]

    def all_states(self) -> list[TemplateState]:
        self.info.all_states = True
        found = [s for s in self.hub.states.all() if self.visible(s.entity_id)]
        return [self._wrap(s) for s in sorted(found, key=lambda s: s.entity_id)]

    def visible_entities(self) -> list[Any]:
        self.info.registries = True
        return [e for e in self.hub.entities.all() if self.visible(e.entity_id)]


class _DomainStates:
    """``states.light``: iterable, and ``states.light.kitchen`` is one state."""

    __slots__ = ("_domain", "_view")
    # What jinja2's sandbox asks of every callable and attribute; answered here, not taken for entity names.
    unsafe_callable = False
    alters_data = False

    def __init__(self, view: HubView, domain: str) -> None:
        self._view = view
        self._domain = domain

    def __getattr__(self, object_id: str) -> TemplateState | None:
        if object_id.startswith("_"):
            raise AttributeError(object_id)
        return self._view.state(f"{self._domain}.{object_id}")

    def __iter__(self) -> Iterator[TemplateState]:
        return iter(self._view.domain_states(self._domain))

    def __len__(self) -> int:
        return len(self._view.domain_states(self._domain))


class _States:
    """``states``: ``states('light.x')`` is a state's text, ``states.light`` a domain, iterating gives all."""

    __slots__ = ("_view",)
    unsafe_callable = False  # see _DomainStates
    alters_data = False

    def __init__(self, view: HubView) -> None:
        self._view = view

    def __call__(self, entity_id: Any, rounded: bool = False, with_unit: bool = False) -> str:
        state = self._view.state(entity_id)
        if state is None:
            return "unknown"
        return state.state_with_unit if with_unit else state.state

    def __getattr__(self, domain: str) -> _DomainStates:
        if domain.startswith("_"):
            raise AttributeError(domain)
        return _DomainStates(self._view, domain)

    def __iter__(self) -> Iterator[TemplateState]:
        return iter(self._view.all_states())

    def __len__(self) -> int:
        return len(self._view.all_states())


def _hub_functions(view: HubView) -> dict[str, Any]:
    """HA's template functions over one view of the hub (each also a filter where HA has it as one)."""
    hub = view.hub
    info = view.info

    def entity_ids(value: Any) -> list[str]:
        if isinstance(value, TemplateState):
            return [value.entity_id]
        if isinstance(value, str):
            return [value]
        if isinstance(value, Iterable) and not isinstance(value, Mapping):
            return [i for item in value for i in entity_ids(item)]
        return []

    def is_state(entity_id: Any, value: Any) -> bool:
        state = view.state(entity_id)
        if state is None:
            return False
        return state.state in value if isinstance(value, list | tuple) else state.state == value

    def state_attr(entity_id: Any, name: Any) -> Any:
        state = view.state(entity_id)
        return None if state is None else state.attributes.get(name)

    def is_state_attr(entity_id: Any, name: Any, value: Any) -> bool:
        return bool(state_attr(entity_id, name) == value)

    def has_value(entity_id: Any) -> bool:
        state = view.state(entity_id)
        return state is not None and state.state not in ("unknown", "unavailable")

    def expand(*values: Any) -> list[TemplateState]:
        found = {}
        for entity_id in entity_ids(list(values)):
            state = view.state(entity_id)
            if state is not None:
                found[entity_id] = state
        return [found[k] for k in sorted(found)]

    def area_of_entity(entity_id: str) -> str | None:
        entity = hub.entities.get(entity_id)
        return hub.entities.area_of(entity) if entity is not None else None

    def area_lookup(value: Any) -> Any:
        """An area by id or by name, or the area of an entity or a device."""
        info.registries = True
        if not isinstance(value, str):
            return None
        area = hub.areas.get(value)
        if area is None:
            area = next((a for a in hub.areas.all() if a.name.casefold() == value.casefold()), None)
        if area is None and view.visible(value) and hub.entities.get(value) is not None:
            area = hub.areas.get(area_of_entity(value) or "")
        if area is None:
            device = hub.devices.get(value)
            if device is not None and _device_visible(device.id):
                area = hub.areas.get(device.area_id or "")
        return area if area is not None and _area_visible(area.id) else None

    def _device_visible(device_id: str) -> bool:
        return view._can_see is None or any(view.visible(e.entity_id) for e in hub.entities.for_device(device_id))

    def _area_visible(area_id: str) -> bool:
        return view._can_see is None or any(area_of_entity(e.entity_id) == area_id for e in view.visible_entities())

    def area_id(value: Any) -> str | None:
        area = area_lookup(value)
        return area.id if area is not None else None

    def area_name(value: Any) -> str | None:
        area = area_lookup(value)
        return area.name if area is not None else None

    def areas() -> list[str]:
        info.registries = True
        return [a.id for a in hub.areas.all() if _area_visible(a.id)]

    def area_entities(value: Any) -> list[str]:
        area = area_lookup(value)
        if area is None:
            return []
        return sorted(e.entity_id for e in view.visible_entities() if area_of_entity(e.entity_id) == area.id)

    def area_devices(value: Any) -> list[str]:
        area = area_lookup(value)
        if area is None:
            return []
        return [d.id for d in hub.devices.all() if d.area_id == area.id and _device_visible(d.id)]

    def device_id(value: Any) -> str | None:
        info.registries = True
        if not isinstance(value, str):
            return None
        entity = hub.entities.get(value)
        if entity is not None:
            return entity.device_id if view.visible(value) else None
        for device in hub.devices.all():
            if value in (device.name, device.name_by_user) and _device_visible(device.id):
                return device.id
        return None

    def device_attr(value: Any, attribute: Any) -> Any:
        info.registries = True
        if not isinstance(value, str) or not isinstance(attribute, str) or attribute.startswith("_"):
            return None
        device = hub.devices.get(value) or hub.devices.get(device_id(value) or "")
        if device is None or not _device_visible(device.id):
            return None
        fields = {"id": device.id, "name": device.name, "name_by_user": device.name_by_user,
                  "manufacturer": device.manufacturer, "model": device.model, "sw_version": device.sw_version,
                  "hw_version": device.hw_version, "area_id": device.area_id, "via_device_id": device.via_device_id,
                  "disabled_by": device.disabled_by,
                  "identifiers": {tuple(k) for k in device.identifiers},
                  "connections": {tuple(k) for k in device.connections}}
        return fields.get(attribute)

    def is_device_attr(value: Any, attribute: Any, expected: Any) -> bool:
        return bool(device_attr(value, attribute) == expected)

    def device_entities(value: Any) -> list[str]:
        info.registries = True
        if not isinstance(value, str):
            return []
        return sorted(e.entity_id for e in hub.entities.for_device(value) if view.visible(e.entity_id))

    def integration_entities(name: Any) -> list[str]:
        """``qilu_hub`` (the platform of every entity here), or a driver's name: its devices' entities."""
        if not isinstance(name, str):
            return []
        entities = view.visible_entities()
        if name == "qilu_hub":
            return sorted(e.entity_id for e in entities)
        drivers = {d.id for d in hub.devices.all() if d.driver == name}
        return sorted(e.entity_id for e in entities if e.device_id in drivers)

    def labels(*_: Any) -> list[str]:
        return []  # no label registry here (yet): loops over labels are empty, not errors

    functions: dict[str, Any] = {
        "states": _States(view), "is_state": is_state, "state_attr": state_attr, "is_state_attr": is_state_attr,
        "has_value": has_value, "expand": expand, "area_id": area_id, "area_name": area_name, "areas": areas,
        "area_entities": area_entities, "area_devices": area_devices, "device_id": device_id,
        "device_attr": device_attr, "is_device_attr": is_device_attr, "device_entities": device_entities,
        "integration_entities": integration_entities, "labels": labels, "label_entities": labels,
        "label_devices": labels, "label_areas": labels,
    }
    return functions


_HUB_FILTER_NAMES = ("is_state", "state_attr", "is_state_attr", "has_value", "expand", "area_id", "area_name",
                     "area_entities", "area_devices", "device_id", "device_attr", "is_device_attr",
                     "device_entities", "integration_entities")
_HUB_ENV = _environment(ChainableUndefined)
# Filters that need the hub are looked up per render (see _HubFilter): registered by name so templates compile.
_HUB_NAMES = frozenset({"states", "is_state", "state_attr", "is_state_attr", "has_value", "expand", "area_id",
                        "area_name", "areas", "area_entities", "area_devices", "device_id", "device_attr",
                        "is_device_attr", "device_entities", "integration_entities", "labels", "label_entities",
                        "label_devices", "label_areas"})


def _hub_filter(name: str) -> Callable[..., Any]:
    @pass_context
    def apply(context: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        function = context.get(name)
        if function is None or isinstance(function, Undefined):
            raise TemplateError(f"{name} is not available here")
        return function(value, *args, **kwargs)

    return apply


for _name in _HUB_FILTER_NAMES:
    _HUB_ENV.filters[_name] = _hub_filter(_name)


def compile_hub_template(source: Any, variables: Iterable[str] = ()) -> Compiled:
    """Compile a ``render_template`` template (refused: syntax errors, names neither HA's nor given)."""
    allowed = _HUB_NAMES | frozenset(variables)
    return _compile(source, allowed, _HUB_ENV, "template")


def render_hub(template: Compiled, view: HubView, variables: Mapping[str, Any] | None = None) -> Any:
    """Render against the hub as ``view`` sees it; the result read as Home Assistant reads it."""
    context = {**(variables or {}), **_hub_functions(view)}
    try:
        pieces = _chunks(template, context)
    except _Missing as err:
        raise TemplateError(str(err)) from None
    return parse_result(_text(pieces))
