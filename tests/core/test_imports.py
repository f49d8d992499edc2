"""Every runtime module imports on its own, and the layers only ever import downwards.

Import isolation (as python-zeroconf tests it): each module of the installed packages is imported in a
process where no other module of ours is loaded yet, so a module that only works because another one
happened to be imported first (a hidden import-order dependency, a cycle) fails here. Modules are spread
over a few worker processes that drop our modules from ``sys.modules`` between imports (third-party ones
stay loaded: re-importing C extensions is not safe, and they are not what is being tested).

Layering: the import graph is read with ``ast`` (module-level and function-level imports both count;
imports under ``if TYPE_CHECKING:`` do not, they never run). A module may import its own layer or lower
ones, never a higher one. The layer table below is data: a module belongs to the layer of the longest
prefix that names it, so a package moving (the appliance lifecycle, the driver SDK) is one line here.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The folders `pip install .` installs, and the name each is installed as (pyproject's package-dir).
RUNTIME_PACKAGES = ("hub", "drivers", "xr_bridge", "firmware_tests", "scenes", "models")
INSTALLED_AS = {folder: name for name, folder in
                tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].items()}

# Lowest first. A module is in the layer of the longest matching prefix ("hub.api" beats "hub").
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # the default model and the scene schema: files, no code of the hub
    ("data", ("qilu_hub.models", "qilu_hub.scene_files")),
    # The core: bus, states, context, model, registries, storage, config, tokens, recorder, commands, Hub.
    ("core", ("qilu_hub",)),
    # Sightings to connections: discovery, drivers and their simulators (the lifecycle owner and the SDK join here).
    ("appliances", ("qilu_hub.discovery", "qilu_hub.appliances", "qilu_hub.sdk", "qilu_hub.virtual",
                    "qilu_hub.drivers", "qilu_hub.matter")),
    ("conformance", ("qilu_hub.firmware_tests",)),  # the appliance makers' kit runs our drivers against their device
    ("features", ("qilu_hub.mqtt", "qilu_hub.recognition", "qilu_hub.scenes")),
    ("api", ("qilu_hub.api",)),
    ("clients", ("qilu_hub.xr_bridge",)),  # the headset client: reads scenes, talks to the API over the network
    ("assembly", ("qilu_hub.setup", "qilu_hub.cli", "qilu_hub.__main__")),  # the one place that knows every part
)

# Cycles between modules that a test here cannot break without editing another helper's territory; each
# entry says where it is to go. Keep this empty when you can.
KNOWN_CYCLES: dict[frozenset[str], str] = {
    frozenset({"qilu_hub.drivers.qoap.ble", "qilu_hub.drivers.qoap.driver"}):
        "ble.py imports descriptions_from from driver.py in a function; moves with the driver SDK",
}

# Modules that need a native library the test machine may lack; an OSError from loading it is not a failure.
NEEDS_NATIVE_LIBRARY = {"qilu_hub.xr_bridge.vkpanels": "the Vulkan loader"}


def _module_files() -> Iterator[tuple[str, Path, bool]]:
    for package in RUNTIME_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = [*INSTALLED_AS[package].split("."), *path.relative_to(ROOT / package).with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            yield ".".join(parts), path, is_package


MODULES = {name: (path, is_package) for name, path, is_package in _module_files()}


def layer_of(module: str) -> int:
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _ours(name: str) -> str | None:
    """The module of ours that importing ``name`` loads (``pkg.mod.Class`` → ``pkg.mod``), if any."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """Our modules that ``module`` imports when it runs (TYPE_CHECKING blocks left out)."""
    path, is_package = MODULES[module]
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit_node(other)
                continue
            visit_node(child)

    def visit_node(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:  # `from . import x` imports the submodule x, not the package's __init__
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
        visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return {ours for name in found if (ours := _ours(name)) is not None and ours != module}


@cache
def import_graph() -> dict[str, set[str]]:
    return {module: imports_of(module) for module in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative: no recursion limit to hit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(frozenset(group))
    return found


def test_every_module_has_a_layer() -> None:
    assert len(MODULES) > 100
    assert [m for m in MODULES if layer_of(m) < 0] == [], "add these packages to LAYERS"


def test_lower_layers_never_import_upper_ones() -> None:
    upward = []
    for module, targets in import_graph().items():
        for target in targets:
            if layer_of(target) > layer_of(module):
                upward.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                              f"({LAYERS[layer_of(target)][0]})")
    assert sorted(upward) == []


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert sorted(sorted(c) for c in found if c not in KNOWN_CYCLES) == []
    assert set(KNOWN_CYCLES) <= set(found), "a known cycle is gone: remove it from KNOWN_CYCLES"


def test_the_graph_sees_imports_the_way_python_runs_them(tmp_path: Path) -> None:
    """The checker itself: function-level imports count, TYPE_CHECKING ones do not, relative ones resolve."""
    assert "qilu_hub.setup" in imports_of("qilu_hub.cli.model")  # function-level
    assert "qilu_hub.core" not in imports_of("qilu_hub.mqtt.bridge")  # under TYPE_CHECKING only
    assert "qilu_hub.api.inbox" in imports_of("qilu_hub.api.app")  # `from . import inbox`
    assert "qilu_hub.api" not in imports_of("qilu_hub.api.app")
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]


_WORKER = """
import importlib, sys, traceback
PACKAGES = tuple(sys.argv[1].split(","))
for name in sys.argv[2:]:
    for loaded in [m for m in sys.modules if m.partition(".")[0] in PACKAGES]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as err:
        ours = (err.name or "").partition(".")[0] in PACKAGES
        print(("FAIL " if ours else "MISSING ") + name + " " + repr(err), flush=True)
    except OSError as err:
        print("NATIVE " + name + " " + repr(err), flush=True)
    except BaseException:
        print("FAIL " + name + " " + traceback.format_exc().replace(chr(10), " | "), flush=True)
"""


def _import_alone(names: list[str]) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    result = subprocess.run([sys.executable, "-c", _WORKER, ",".join(RUNTIME_PACKAGES), *names], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=240, check=False)
    lines = result.stdout.splitlines()
    if result.returncode != 0:
        lines.append(f"FAIL worker exited {result.returncode}: {result.stderr[-2000:]}")
    return lines


def test_every_module_imports_on_its_own() -> None:
    names = sorted(MODULES)
    workers = max(1, min(4, os.cpu_count() or 1))
    batches = [names[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        lines = [line for batch in pool.map(_import_alone, batches) for line in batch]
    failures = [line for line in lines if line.startswith("FAIL")]
    failures += [line for line in lines if line.startswith("NATIVE") and line.split()[1] not in NEEDS_NATIVE_LIBRARY]
    assert failures == []
    # A module whose optional third-party library is not installed ("MISSING") is not our failure.
    assert len(lines) <= len(names)
