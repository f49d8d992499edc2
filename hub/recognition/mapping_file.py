"""Dataset mapping files: how a foreign dataset's sensors and activity labels meet the common device model.

A mapping file is YAML, checked against ``MAPPING_SCHEMA`` (JSON schema) with errors that name the file, the
line and the key.  It says, per sensor, its area and capability and how its raw value becomes active/inactive;
per activity label, the household scene it stands for; and what to do with sensors or labels it does not
name (``unmapped:``; an error unless the file says otherwise, so nothing silently becomes ``idle``)::

    format: kasteren            # which reader (datasets.READERS)
    files: {sensors: kasterenSenseData.txt, activities: kasterenActData.txt}
    unlabelled: idle            # time no label covers: a scene, or "unknown" (left out of training and scoring)
    sensors:
      "1": {area: kitchen, capability: power, name: Microwave}
      M01: {area: kitchen, capability: motion, active: [ON]}
      AD1-A: {area: kitchen, capability: water, above: 0.02}
      T101: {ignore: true}
    activities:
      "1": {name: leave house, scene: away}
      Sleeping: sleeping
    unmapped: {sensors: error, activities: error}

docs/recognition.md describes every key; bench/datasets/ holds one file per dataset the project benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .features import AREAS, CAPABILITIES
from .mapping import AREA_SYNONYMS, SCENES, area_slug, casas_capability

UNKNOWN = "unknown"  # a scene-valued option meaning "nobody knows": those slices are neither trained nor scored
FORMATS = ("kasteren", "kasteren_tl", "aras", "ordonez", "ucami", "casas", "recorder_jsonl", "home_assistant")
_SCENE_OR_UNKNOWN = {"enum": [*SCENES, UNKNOWN]}

MAPPING_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["format"],
    "properties": {
        "dataset": {"type": "string"},
        "format": {"enum": list(FORMATS)},
        "files": {"type": "object", "additionalProperties": {"type": "string"}},
        "unlabelled": _SCENE_OR_UNKNOWN,
        "period": {"enum": ["all", "labelled"]},
        "resident": {"type": "integer", "minimum": 1},
        "start_date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "active": {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
        "sensors": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "area": {"type": "string"},
                    "capability": {"enum": list(CAPABILITIES)},
                    "name": {"type": "string"},
                    "active": {"type": "array", "minItems": 1, "items": {"type": ["string", "number", "boolean"]}},
                    "above": {"type": "number"},
                    "ignore": {"type": "boolean"},
                },
                "oneOf": [
                    {"required": ["ignore"], "properties": {"ignore": {"const": True}}},
                    {"required": ["area", "capability"]},
                ],
            },
        },
        "activities": {
            "type": "object",
            "additionalProperties": {
                "oneOf": [
                    _SCENE_OR_UNKNOWN,
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["scene"],
                        "properties": {"name": {"type": "string"}, "scene": _SCENE_OR_UNKNOWN},
                    },
                ]
            },
        },
        "unmapped": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "sensors": {"enum": ["error", "ignore", "by_prefix"]},
                "activities": {"enum": ["error", *SCENES, UNKNOWN]},
            },
        },
    },
}


class MappingError(ValueError):
    """A mapping file a person must fix; the message names the file, line and key."""

    def __init__(self, path: Path | str, line: int | None, key: str | None, message: str) -> None:
        where = f"{path}" + (f", line {line}" if line else "")
        super().__init__(f"{where}: {key + ' ' if key else ''}{message}")
        self.path, self.line, self.key = path, line, key


@dataclass(frozen=True, slots=True)
class SensorMap:
    area: str
    capability: str
    name: str = ""
    active_values: frozenset[str] | None = None  # lower-cased raw values meaning active; None: the reader decides
    above: float | None = None  # numeric values above this are active

    def is_active(self, value: Any, default: Callable[[str, Any], bool]) -> bool:
        """Whether a raw value means active: the sensor's own rule, else ``default(capability, value)``."""
        if isinstance(value, bool) and self.above is None and self.active_values is None:
            return value
        if self.above is not None:
            try:
                return float(value) > self.above
            except (TypeError, ValueError):
                return False
        if self.active_values is not None:
            return str(value).strip().lower() in self.active_values
        return default(self.capability, value)


@dataclass
class DatasetMapping:
    """A parsed mapping file (or one built in code, e.g. ``builtin_kasteren_a``)."""

    format: str
    path: str = "<built-in>"
    dataset: str = ""
    files: dict[str, str] = field(default_factory=dict)
    unlabelled: str = "idle"
    period: str = "all"
    resident: int = 1
    start_date: str = "2000-01-03"
    active_values: frozenset[str] | None = None
    sensors: dict[str, SensorMap] = field(default_factory=dict)
    ignored: frozenset[str] = frozenset()
    names: dict[str, str] = field(default_factory=dict)  # activity key -> activity name
    scenes: dict[str, str] = field(default_factory=dict)  # activity name -> scene (or UNKNOWN)
    unmapped_sensors: str = "error"
    unmapped_activities: str = "error"
    prefix_areas: dict[str, str] = field(default_factory=dict)  # with unmapped sensors "by_prefix": sensor -> area

    def sensor(self, key: str) -> SensorMap | None:
        """The sensor's mapping; None for a sensor the file ignores (explicitly, or by ``unmapped: ignore``)."""
        found = self.sensors.get(key)
        if found is not None or key in self.ignored or self.unmapped_sensors == "ignore":
            return found
        if self.unmapped_sensors == "by_prefix":
            cap = casas_capability(key)
            return None if cap is None else SensorMap(self.prefix_areas.get(key, "other"), cap)
        raise KeyError(key)

    def activity_name(self, key: str) -> str:
        return self.names.get(key, key)

    def scene_of(self, name: str) -> str:
        """The scene for an activity name; ``KeyError`` when the file does not name it and says ``error``."""
        found = self.scenes.get(name)
        if found is None:  # labels differ in case between copies of a dataset ("Sleeping", "sleeping")
            found = {k.casefold(): v for k, v in self.scenes.items()}.get(name.casefold())
        if found is not None:
            return found
        if name == self.unlabelled_name:
            return self.unlabelled
        if self.unmapped_activities == "error":
            raise KeyError(name)
        return self.unmapped_activities

    @property
    def unlabelled_name(self) -> str:
        # Time no interval covers carries this name in raw-label mode (the Kasteren protocol's "idle" class).
        return "idle"

    def file(self, role: str, default: str) -> str:
        return self.files.get(role, default)


def canonical_area(area: str) -> str | None:
    """The feature spec's area for a room name or a synonym of it, or None when it is neither."""
    slug = area_slug(area)
    slug = AREA_SYNONYMS.get(slug, slug)
    return slug if slug in AREAS else None


def _line(node: yaml.Node | None) -> int | None:
    return None if node is None else node.start_mark.line + 1


def _node_at(root: yaml.Node, path: list[Any]) -> yaml.Node:
    """The YAML node at a JSON-schema error path (deepest one found), for its line number."""
    node = root
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part):
                    node = value_node
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _key_node(root: yaml.Node, path: list[Any]) -> yaml.Node | None:
    parent = _node_at(root, path[:-1])
    if isinstance(parent, yaml.MappingNode):
        for key_node, _value in parent.value:
            if str(key_node.value) == str(path[-1]):
                return key_node
    return None


def _dotted(path: list[Any]) -> str | None:
    return ".".join(str(p) for p in path) or None


def parse_mapping(text: str, path: Path | str = "<mapping>") -> DatasetMapping:
    """Parse and validate mapping-file text; raises ``MappingError`` naming the line of the problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else None
        raise MappingError(path, line, None, f"is not valid YAML: {err.problem}") from err
    if root is None:
        raise MappingError(path, None, None, "is empty")
    import jsonschema  # only tools read mapping files: kept out of the running hub's imports

    data = yaml.SafeLoader("").construct_document(root)
    # Sensor and activity keys are text whatever YAML made of them (Kasteren ids are numbers).
    for section in ("sensors", "activities"):
        if isinstance(data, dict) and isinstance(data.get(section), dict):
            data[section] = {str(k): v for k, v in data[section].items()}
    validator = jsonschema.Draft202012Validator(MAPPING_SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        assert best is not None
        where = list(best.absolute_path)
        if best.validator == "additionalProperties" and isinstance(best.instance, dict):
            schema = best.schema if isinstance(best.schema, dict) else {}
            allowed = set(schema.get("properties", {}))
            extra = sorted(k for k in best.instance if k not in allowed)
            if extra:
                key_path = [*where, extra[0]]
                raise MappingError(path, _line(_key_node(root, key_path)), _dotted(key_path),
                                   f"is not a known key (known here: {', '.join(sorted(allowed))})")
        raise MappingError(path, _line(_node_at(root, where)), _dotted(where), _message(best))
    return _build(data, root, str(path))


def _message(err: Any) -> str:
    """A person's wording of a ``jsonschema.ValidationError``."""
    if err.validator == "enum":
        return f"must be one of {', '.join(map(str, err.validator_value))}, not {err.instance!r}"
    if err.validator == "oneOf" and isinstance(err.instance, dict):
        return "needs area and capability (or ignore: true)"
    if err.validator == "oneOf":
        return f"must be a scene ({', '.join(SCENES)}, {UNKNOWN}) or {{name, scene}}, not {err.instance!r}"
    if err.validator == "required":
        return err.message.replace("is a required property", "is required")
    return err.message


def _build(data: dict[str, Any], root: yaml.Node, path: str) -> DatasetMapping:
    sensors: dict[str, SensorMap] = {}
    ignored: set[str] = set()
    for key, entry in (data.get("sensors") or {}).items():
        if entry.get("ignore"):
            ignored.add(key)
            continue
        area = canonical_area(entry["area"])
        if area is None:  # never a silent "other": the person says "other" when they mean it
            node = _node_at(root, ["sensors", key, "area"])
            raise MappingError(path, _line(node), f"sensors.{key}.area",
                               f"{entry['area']!r} is not a known area or synonym (areas: {', '.join(AREAS)}; "
                               "write 'other' for a room none of them fits)")
        values = entry.get("active")
        sensors[key] = SensorMap(
            area, entry["capability"], entry.get("name", ""),
            frozenset(str(v).strip().lower() for v in values) if values else None,
            float(entry["above"]) if "above" in entry else None,
        )
    names: dict[str, str] = {}
    scenes: dict[str, str] = {}
    for key, entry in (data.get("activities") or {}).items():
        if isinstance(entry, str):
            names[key], scenes[key] = key, entry
        else:
            name = entry.get("name", key)
            names[key] = name
            scenes[name] = entry["scene"]
    unmapped = data.get("unmapped") or {}
    top_active = data.get("active")
    return DatasetMapping(
        format=data["format"],
        path=path,
        dataset=data.get("dataset", ""),
        files=dict(data.get("files") or {}),
        unlabelled=data.get("unlabelled", "idle"),
        period=data.get("period", "all"),
        resident=int(data.get("resident", 1)),
        start_date=data.get("start_date", "2000-01-03"),
        active_values=frozenset(str(v).strip().lower() for v in top_active) if top_active else None,
        sensors=sensors,
        ignored=frozenset(ignored),
        names=names,
        scenes=scenes,
        unmapped_sensors=unmapped.get("sensors", "error"),
        unmapped_activities=unmapped.get("activities", "error"),
    )


def load_mapping(path: Path | str) -> DatasetMapping:
    """Read a mapping file; ``MappingError`` (file, line, key) when it is wrong, ``OSError`` when unreadable."""
    return parse_mapping(Path(path).read_text(encoding="utf-8"), path)
