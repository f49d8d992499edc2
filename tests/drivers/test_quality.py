"""Every shipped driver meets the quality level it declares: the rules of docs/driver-quality.md that a
machine can check (B = bronze, S = silver, G = gold; a level includes the ones below)."""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

import pytest

from qilu_hub import capabilities as caps
from qilu_hub.discovery.models import BleInfo, MdnsInfo
from qilu_hub.drivers.manager import BUILTIN_DRIVERS, DriverManager
from qilu_hub.sdk import Driver, EntityDescription
from qilu_hub.sdk._loading import LazyDriver

ROOT = Path(__file__).resolve().parents[2]
LEVELS = {"bronze": 0, "silver": 1, "gold": 2}
# Dependencies of the hub itself: a driver may use them without declaring them.
CORE_PACKAGES = {"qilu_hub", "aiohttp", "msgpack", "zeroconf", "bleak", "habluetooth", "sensor_state_data"}
FOREIGN = (
    MdnsInfo("_ipp._tcp.local.", "printer._ipp._tcp.local.", "printer.local.", ("127.0.0.1",), 631, {"ty": "x"}),
    BleInfo("00:11:22:33:44:55", "Tile", -70, manufacturer_data={0x004C: b"\x02\x15"}),
)

# The drivers themselves, not the lazy stand-ins the manager holds until an advert matches.
DRIVERS: list[Driver] = [d.load() if isinstance(d, LazyDriver) else d
                         for d in DriverManager(entry_points_group=None).drivers.values()]


def package_dir(driver: Driver) -> Path:
    return ROOT / "drivers" / driver.manifest.name


def at_least(driver: Driver, level: str) -> bool:
    return LEVELS[driver.manifest.quality] >= LEVELS[level]


def test_all_builtin_drivers_loaded() -> None:
    assert len(DRIVERS) == len(BUILTIN_DRIVERS)


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.manifest.name)
def test_bronze_rules(driver: Driver) -> None:
    m = driver.manifest
    assert re.fullmatch(r"[a-z][a-z0-9_]*", m.name) and package_dir(driver).is_dir(), "B1: name is the package"
    assert re.fullmatch(r"\d+\.\d+\.\d+", m.version) and m.title, "B1: semantic version and title"
    assert m.mdns or m.ble, "B2: at least one discovery matcher"
    assert m.capabilities and all(c in caps.CAPABILITIES for c in m.capabilities), "B3: known capabilities"
    for info in FOREIGN:
        assert driver.identify(info) is None, "B4: foreign discoveries are not claimed"
    module = sys.modules[type(driver).__module__]
    descriptions = [d for v in vars(module).values() if isinstance(v, tuple) for d in v
                    if isinstance(d, EntityDescription)]
    keys = [d.key for d in descriptions]
    assert len(keys) == len(set(keys)), "B5: entity description keys are unique"
    for desc in descriptions:
        assert set(desc.capabilities) <= set(m.capabilities), f"B5: {desc.key} capabilities declared in the manifest"
    assert m.documentation, "B6: documentation link"


@pytest.mark.parametrize("driver", [d for d in DRIVERS if at_least(d, "silver")], ids=lambda d: d.manifest.name)
def test_silver_rules(driver: Driver) -> None:
    name = driver.manifest.name
    assert (package_dir(driver) / "simulator.py").is_file(), "S1: a simulator beside the driver"
    tests = " ".join(p.read_text() for p in (ROOT / "tests" / "drivers").glob("test_*.py"))
    assert f"qilu_hub.drivers.{name}" in tests, "S2: tests exercise the driver's package"
    source = (package_dir(driver) / "driver.py").read_text()
    assert "report_lost" in source or "PassiveBleConnection" in source or "PollingCoordinator" in source, \
        "S3: loss of the appliance is reported (unavailable, then reconnect)"
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m not in CORE_PACKAGES
                   and m != "__future__"}
    declared = {re.split(r"[<>=!~ ]", r)[0].replace("-", "_") for r in driver.manifest.requirements}
    assert third_party <= declared, f"S4: libraries {third_party - declared} missing from requirements"
    assert driver.manifest.iot_class in ("local_push", "local_polling"), "S5: iot_class declared"


@pytest.mark.parametrize("driver", [d for d in DRIVERS if at_least(d, "gold")], ids=lambda d: d.manifest.name)
def test_gold_rules(driver: Driver) -> None:
    doc = ROOT / driver.manifest.documentation
    assert doc.is_file(), "G1: documentation shipped in docs/"
    kit_tests = " ".join(p.read_text() for p in (ROOT / "tests" / "firmware_tests").glob("test_*.py"))
    assert f"qilu_hub.drivers.{driver.manifest.name}" in kit_tests, "G2: the conformance kit proves its simulators"
    assert driver.manifest.iot_class == "local_push", "G3: pushes state, no polling"
    importlib.import_module(f"qilu_hub.drivers.{driver.manifest.name}.simulator")
