"""Drivers load lazily: the hub starts with the built-in manifests only, and imports a driver (and its protocol
library) when an advert first matches it; a driver that cannot be imported costs that driver only."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import qilu_hub.sdk
from qilu_hub.drivers.manager import DriverManager
from qilu_hub.sdk import MdnsInfo

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL_LIBRARIES = ("aioshelly", "wled", "bthome_ble", "xiaomi_ble", "matter_server", "chip")

SDK = qilu_hub.sdk.__name__
PROBE = textwrap.dedent("""
    import json, sys
    from {manager} import DriverManager
    from {sdk} import MdnsInfo
    libraries = {libraries!r}
    manager = DriverManager(entry_points_group=None)
    at_start = [name for name in libraries if name in sys.modules]
    shelly = MdnsInfo("_shelly._tcp.local.", "shellyplus1pm-a8032ab10001._shelly._tcp.local.", "x.local.",
                      ("127.0.0.1",), 80, {{"gen": "2", "id": "shellyplus1pm-a8032ab10001"}})
    matched = [d.manifest.name for d in manager.match(shelly)]
    after_match = [name for name in libraries if name in sys.modules]
    identified = [appliance.key for _, appliance in manager.identify(shelly)]
    after_identify = [name for name in libraries if name in sys.modules]
    print(json.dumps({{"drivers": sorted(manager.drivers), "errors": manager.load_errors, "at_start": at_start,
                      "matched": matched, "after_match": after_match, "identified": identified,
                      "after_identify": after_identify}}))
""")


def test_builtin_drivers_start_as_manifests_and_load_on_first_identify() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    out = subprocess.run([sys.executable, "-c", PROBE.format(manager=DriverManager.__module__, sdk=SDK,
                                                                libraries=PROTOCOL_LIBRARIES)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["drivers"] == ["bthome", "matter", "qoap", "shelly", "wled", "xiaomi"] and report["errors"] == {}
    assert report["at_start"] == []  # no protocol library at start
    assert report["matched"] == ["shelly"] and report["after_match"] == []  # matching reads manifests only
    assert report["identified"] == ["a8032ab10001"] and report["after_identify"] == ["aioshelly"]


def write_package(tmp_path: Path, name: str, driver_module: str) -> None:
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "manifest.py").write_text(textwrap.dedent(f"""
        from {SDK} import Manifest, MdnsMatcher
        MANIFEST = Manifest(name={name!r}, version="1.0.0", title={name!r}, mdns=(MdnsMatcher("_{name}._tcp"),),
                            driver=f"{{__package__}}.driver:Driver")
    """))
    (tmp_path / name / "driver.py").write_text(textwrap.dedent(driver_module))
    dist = tmp_path / f"{name}-1.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0.0\n")
    (dist / "entry_points.txt").write_text(f"[qilu_hub.drivers]\n{name} = {name}.manifest:MANIFEST\n")


def info(name: str) -> MdnsInfo:
    return MdnsInfo(f"_{name}._tcp.local.", f"x._{name}._tcp.local.", "x.local.", ("127.0.0.1",), 1, {"id": "k1"})


def test_third_party_manifest_entry_point_loads_its_driver_on_first_match(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    write_package(tmp_path, "acmelazy", f"""
        import {SDK} as sdk
        class Driver(sdk.Driver):
            from acmelazy.manifest import MANIFEST as manifest
            def identify(self, info): return sdk.DiscoveredAppliance(key=info.properties["id"], title="Ac")
            def connect(self, context, appliance): raise NotImplementedError
    """)
    write_package(tmp_path, "acmebroken", """
        import no_such_protocol_library  # not installed: the driver cannot load
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        manager = DriverManager(builtin=False)
        assert {"acmelazy", "acmebroken"} <= set(manager.drivers) and manager.load_errors == {}
        assert "acmelazy.driver" not in sys.modules
        [(driver, appliance)] = manager.identify(info("acmelazy"))
        assert driver.manifest.name == "acmelazy" and appliance.key == "k1" and "acmelazy.driver" in sys.modules

        with caplog.at_level(logging.ERROR):
            for _ in range(5):  # an advert every few seconds must not log the import error each time
                assert manager.identify(info("acmebroken")) == []
        assert [origin for origin in manager.load_errors] == ["entry point acmebroken"]
        assert "no_such_protocol_library" in manager.load_errors["entry point acmebroken"]
        assert len([r for r in caplog.records if "acmebroken" in r.getMessage()]) == 1
        assert manager.identify(info("acmelazy"))  # the other driver is unaffected
    finally:
        for module in [m for m in sys.modules if m.split(".")[0] in ("acmelazy", "acmebroken")]:
            sys.modules.pop(module)
