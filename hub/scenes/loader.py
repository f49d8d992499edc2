"""Load, schema-check and semantically check scene files; every problem is reported as file:line: message."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from . import yamlpos
from .catalog import Catalog
from .model import (
    ACTIONS,
    ActionBinding,
    CommandCall,
    Control,
    HomeScene,
    ImmersiveScene,
    Panel,
    Placement,
    SceneFile,
    ScheduleTrigger,
    SituationTrigger,
    Target,
    resolve_binding,
)

UNKNOWN_ENTITY = "unknown_entity"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SceneIssue:
    file: str
    line: int
    message: str
    # "unknown_entity" marks a problem that may go away by itself once the appliance is adopted
    kind: str = "invalid"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class SceneError(ValueError):
    """A scene file was refused; .issues lists every problem found (file, line, message)."""

    def __init__(self, issues: list[SceneIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(map(str, issues)))

    @property
    def only_unknown_entities(self) -> bool:
        """True when every problem is an entity the hub does not know (yet): worth retrying when it appears."""
        return bool(self.issues) and all(i.kind == UNKNOWN_ENTITY for i in self.issues)


@cache
def schema() -> dict[str, Any]:
    """The JSON schema shipped in the `scenes` package (scenes/schema.json)."""
    text = resources.files("qilu_hub.scene_files").joinpath("schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def _line(obj: Any, key: Any = None) -> int:
    if key is not None and isinstance(obj, yamlpos.LineDict):
        return obj.key_lines.get(key, obj.line)
    return getattr(obj, "line", 0)


def _call(raw: Any) -> CommandCall:
    if isinstance(raw, str):
        return CommandCall(raw, {}, 0)
    return CommandCall(str(raw["command"]), dict(raw.get("args") or {}), _line(raw))


def _binding(raw: Any, line: int) -> ActionBinding:
    if isinstance(raw, dict) and "bridge" in raw:
        return ActionBinding(bridge=raw["bridge"], line=line)
    call = _call(raw)
    return ActionBinding(call=CommandCall(call.command, call.args, line), line=line)


def _bindings(raw: Any) -> dict[str, ActionBinding]:
    if not raw:
        return {}
    return {a: _binding(raw[a], _line(raw, a)) for a in ACTIONS if a in raw}


def _build(path: str, doc: Any) -> SceneFile:
    homes = []
    for hs in doc.get("home_scenes") or []:
        targets = []
        for eid, v in hs["targets"].items():
            ln = _line(hs["targets"], eid)
            c = _call(v)
            targets.append(Target(eid, CommandCall(c.command, c.args, c.line or ln), ln))
        schedules, situations = [], []
        for tr in hs.get("triggers") or []:
            if "schedule" in tr:
                sch = tr["schedule"]
                hh, mm = (int(x) for x in sch["at"].split(":"))
                days = frozenset(_DAYS.index(d) for d in sch["days"]) if sch.get("days") else None
                schedules.append(ScheduleTrigger(hh, mm, days, _line(tr)))
            else:
                sit = tr["situation"]
                situations.append(
                    SituationTrigger(
                        sit["label"],
                        float(sit.get("min_confidence", 0.7)),
                        float(sit.get("cooldown", 300)),
                        _line(tr),
                    )
                )
        homes.append(
            HomeScene(
                hs["name"],
                tuple(targets),
                tuple(schedules),
                tuple(situations),
                hs.get("description", ""),
                _line(hs),
            )
        )
    immersive = []
    for sc in doc.get("immersive_scenes") or []:
        panels = []
        for p in sc["panels"]:
            pl = p["placement"]
            off = pl.get("offset")
            placement = Placement(
                pl["relative_to"],
                pl.get("ref"),
                (float(off[0]), float(off[1]), float(off[2])) if off else (0.0, 1.4, -1.0),
                float(pl.get("yaw", 0.0)),
            )
            controls = tuple(
                Control(
                    c["type"],
                    c["entity"],
                    c.get("label"),
                    c.get("attribute"),
                    float(c.get("min", 0.0)),
                    float(c.get("max", 100.0)),
                    _bindings(c.get("bindings")),
                    _line(c),
                )
                for c in p["controls"]
            )
            size = p.get("size") or {}
            layout = p.get("layout") or {}
            columns = int(layout.get("columns", 1))
            panels.append(
                Panel(
                    p["id"],
                    placement,
                    controls,
                    p.get("title", ""),
                    float(size.get("width", 0.5)),
                    float(size.get("height", 0.3)),
                    int(p.get("resolution", 1024)),
                    layout.get("type", "grid" if columns > 1 else "list"),
                    columns,
                    _bindings(p.get("bindings")),
                    _line(p),
                )
            )
        immersive.append(
            ImmersiveScene(
                sc["name"], tuple(panels), _bindings(sc.get("bindings")), sc.get("description", ""), _line(sc)
            )
        )
    return SceneFile(path, tuple(homes), tuple(immersive))


def _check(sf: SceneFile, catalog: Catalog | None) -> list[SceneIssue]:
    issues: list[SceneIssue] = []

    def bad(line: int, msg: str, kind: str = "invalid") -> None:
        issues.append(SceneIssue(sf.path, line, msg, kind))

    def check_call(entity_id: str, call: CommandCall, line: int, extra: dict[str, Any] | None = None) -> None:
        if catalog is None:
            return
        if not catalog.entity_exists(entity_id):
            bad(line, f"unknown entity {entity_id!r}", UNKNOWN_ENTITY)
            return
        accepted = catalog.entity_commands(entity_id)
        if accepted is not None and call.command not in accepted:
            bad(
                call.line or line,
                f"{entity_id} does not accept command {call.command!r} "
                f"(accepts: {', '.join(sorted(accepted)) or 'nothing'})",
            )
            return
        deep = getattr(catalog, "check_call", None)  # the hub can also check arguments
        if deep is not None:
            problem = deep(entity_id, call.command, {**call.args, **(extra or {})})
            if problem:
                bad(call.line or line, f"{entity_id}.{call.command}: {problem}")

    names: set[str] = set()
    for hs in sf.home_scenes:
        if hs.name in names:
            bad(hs.line, f"duplicate scene name {hs.name!r}")
        names.add(hs.name)
        for t in hs.targets:
            check_call(t.entity_id, t.call, t.line)
    for sc in sf.immersive_scenes:
        if sc.name in names:
            bad(sc.line, f"duplicate scene name {sc.name!r}")
        names.add(sc.name)
        panel_ids: set[str] = set()
        for p in sc.panels:
            if p.id in panel_ids:
                bad(p.line, f"duplicate panel id {p.id!r}")
            panel_ids.add(p.id)
            # A placement on a device or area the registry does not know would put the panel at the stage origin.
            reference_problem = getattr(catalog, "reference_problem", None)
            if reference_problem is not None and p.placement.ref is not None:
                problem = reference_problem(p.placement.relative_to, p.placement.ref)
                if problem:
                    bad(p.line, f"panel {p.id!r}: {problem}")
            for c in p.controls:
                if catalog is not None and not catalog.entity_exists(c.entity_id):
                    bad(c.line, f"unknown entity {c.entity_id!r}", UNKNOWN_ENTITY)
                    continue
                if c.type == "slider" and not c.attribute:
                    bad(c.line, "a slider needs 'attribute' (the argument it sets, e.g. brightness)")
                if c.type == "slider" and c.max <= c.min:
                    bad(c.line, "slider max must be greater than min")
                if c.type == "readout" and c.bindings:
                    bad(c.line, "a readout has no actions; remove its bindings")
                for action in ACTIONS:
                    b = None if c.type == "readout" else resolve_binding(action, c, p, sc)
                    if b is not None and b.call is not None:
                        # a slider adds its value as the argument named by `attribute`
                        extra = {c.attribute: c.min} if c.type == "slider" and c.attribute else None
                        check_call(c.entity_id, b.call, b.line or c.line, extra)
                b = resolve_binding("select", c, p, sc)
                if c.type == "button" and (b is None or b.call is None):
                    bad(c.line, "a button needs a 'select' command binding")
    return issues


def parse_scene_text(text: str, path: str = "<scene>", catalog: Catalog | None = None) -> SceneFile:
    """Parse + validate scene YAML. With a catalog, unknown entities and impossible commands are refused."""
    try:
        doc = yamlpos.load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise SceneError(
            [SceneIssue(path, (mark.line + 1) if mark else 1, f"YAML: {e.problem or e.context}")]
        ) from None
    except yaml.YAMLError as e:
        raise SceneError([SceneIssue(path, 1, f"YAML: {e}")]) from None
    import jsonschema  # here: ~3 MiB a hub without scene files (and the API, which imports this) never needs

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        issues = []
        for err in errors:
            # oneOf errors are vague; the most relevant sub-error names the real problem
            best = jsonschema.exceptions.best_match([err])
            where = "/".join(map(str, best.absolute_path)) or "(top)"
            issues.append(SceneIssue(path, yamlpos.line_of(doc, list(best.absolute_path)), f"{where}: {best.message}"))
        raise SceneError(issues)
    sf = _build(path, doc)
    issues = _check(sf, catalog)
    if issues:
        raise SceneError(issues)
    return sf


def load_scene_file(path: str | Path, catalog: Catalog | None = None) -> SceneFile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise SceneError([SceneIssue(str(p), 0, f"cannot read: {e.strerror}")]) from None
    return parse_scene_text(text, str(p), catalog)
