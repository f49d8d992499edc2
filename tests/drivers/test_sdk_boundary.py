"""The SDK boundary: a built-in driver imports from the hub only ``qilu_hub.sdk`` (and ``qilu_hub.sdk.testing`` in its
simulators), so everything a driver needs is in the SDK's ``__all__`` and nothing else is a promise."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import qilu_hub.drivers
import qilu_hub.sdk
import qilu_hub.sdk.testing

ROOT = Path(__file__).resolve().parents[2]
DRIVERS_DIR = Path(qilu_hub.drivers.__file__).parent
SDK, SDK_TESTING = qilu_hub.sdk.__name__, qilu_hub.sdk.testing.__name__
# The project's own top-level names, installed (the namespace) and as folders here: importing any of them, other
# than the SDK, crosses the boundary.
PROJECT = {p.parent.name for p in ROOT.glob("*/__init__.py")} | {SDK.partition(".")[0]}
PACKAGES = sorted(p.parent for p in DRIVERS_DIR.glob("*/manifest.py"))
MODULES = [m for p in PACKAGES for m in sorted(p.glob("*.py"))]


def is_simulator(module: Path) -> bool:
    return "simulator" in module.stem


def imports(module: Path) -> list[tuple[str, int, list[str]]]:
    """(module, relative level, names) of every import in ``module``, type-checking-only ones included."""
    out = []
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, 0, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level, [alias.name for alias in node.names]))
    return out


def boundary_violations(module: Path) -> list[str]:
    own = f"{qilu_hub.drivers.__name__}.{module.parent.name}"
    allowed = {SDK, SDK_TESTING} if is_simulator(module) else {SDK}
    bad = []
    for name, level, _names in imports(module):
        if level > 1:  # "from .. import x": a sibling package of the drivers, not the driver's own
            bad.append(f"{'.' * level}{name}")
        elif level == 0 and name.split(".")[0] in PROJECT and name not in allowed \
                and name != own and not name.startswith(own + "."):
            bad.append(name)
    return bad


def test_every_builtin_driver_package_is_checked() -> None:
    assert {p.name for p in PACKAGES} >= {"qoap", "shelly", "wled", "bthome", "xiaomi"}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: f"{m.parent.name}/{m.name}")
def test_driver_modules_import_only_the_sdk(module: Path) -> None:
    assert boundary_violations(module) == [], f"{module.relative_to(ROOT)} imports hub internals"


def test_the_check_catches_internal_imports(tmp_path: Path) -> None:
    """The check itself: internal imports, climbs out of the package and testing helpers in a driver fail."""
    package = tmp_path / "acme"
    package.mkdir()
    driver = package / "driver.py"
    core = SDK.rpartition(".")[0]  # the hub's package, whatever the namespace calls it
    for line in (f"from {core}.discovery.models import MdnsInfo", f"import {core}.core", "from .. import parser_log",
                 f"from {SDK_TESTING} import wait_for",
                 f"from {qilu_hub.drivers.__name__}.shelly.driver import ShellyDriver"):
        driver.write_text(f"from __future__ import annotations\n{line}\n")
        assert boundary_violations(driver), line
    driver.write_text(f"import asyncio\nimport aiohttp\nfrom {SDK} import Driver\nfrom . import profile\n")
    assert boundary_violations(driver) == []


def test_what_drivers_import_from_the_sdk_is_exported() -> None:
    used = {(module.name, name) for module in MODULES for mod, _, names in imports(module)
            if mod in (SDK, SDK_TESTING) for name in names}
    exported = set(qilu_hub.sdk.__all__) | set(qilu_hub.sdk.testing.__all__)
    assert {name for _, name in used} <= exported
    for name in qilu_hub.sdk.__all__:
        assert getattr(qilu_hub.sdk, name) is not None, name
    for name in qilu_hub.sdk.testing.__all__:
        assert getattr(qilu_hub.sdk.testing, name) is not None, name


def test_manifests_import_no_protocol_library() -> None:
    """A manifest is data: it imports the SDK, the standard library and its own package only."""
    for package in PACKAGES:
        for name, level, _ in imports(package / "manifest.py"):
            top = name.split(".")[0]
            assert level == 1 or name == SDK or top in sys.stdlib_module_names or top == "__future__", \
                f"{package.name}/manifest.py imports {name}"
