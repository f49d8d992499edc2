"""mDNS service info (TXT records, names, addresses) -> MdnsInfo -> every mDNS driver's identify()."""

from __future__ import annotations

import atheris

INSTRUMENT = ("qilu_hub.discovery", "qilu_hub.drivers")
SEEDS = [b"\x02\x05model\x0bSHPLG-S\x02id\x0cshellyplug-1", b"\x01\x04qoap\x011"]

_DRIVERS: list = []


def setup() -> None:
    from qilu_hub.drivers.qoap.driver import QoapDriver
    from qilu_hub.drivers.shelly.driver import ShellyDriver
    from qilu_hub.drivers.wled.driver import WledDriver

    _DRIVERS.extend([QoapDriver(), ShellyDriver(), WledDriver()])


def one(data: bytes) -> None:
    from qilu_hub.discovery.parse import ParseStats, mdns_info
    from qilu_hub.drivers.qoap.profile import txt_errors

    fdp = atheris.FuzzedDataProvider(data)
    types = ("_shelly._tcp.local.", "_http._tcp.local.", "_wled._tcp.local.", "_qoap._tcp.local.")
    type_ = types[fdp.ConsumeIntInRange(0, 3)]
    name = fdp.ConsumeUnicodeNoSurrogates(40) + "." + type_
    server = fdp.ConsumeUnicodeNoSurrogates(20) or None
    port = fdp.ConsumeIntInRange(-1, 70000)
    props: dict = {}
    for _ in range(fdp.ConsumeIntInRange(0, 12)):
        key = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 12))
        value = None if fdp.ConsumeBool() else fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))
        props[key] = value
    stats = ParseStats()
    info = mdns_info(type_, name, server, ["127.0.0.1"], port, props, None, stats)
    if info is None:
        return
    assert all(k == k.lower() for k in info.properties)
    txt_errors(info.properties)
    for driver in _DRIVERS:
        driver.identify(info)
