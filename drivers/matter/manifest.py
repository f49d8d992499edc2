"""The matter driver's manifest: data only, importable without python-matter-server.

Commissionable Matter appliances announce themselves over mDNS as ``_matterc._udp`` (TXT ``D`` the
discriminator, ``VP`` vendor+product) and over BLE with service data under the 16-bit UUID 0xFFF6.
Operational ones (``_matter._tcp``) are already on a fabric: the hub reaches those through matter-server.
"""

from __future__ import annotations

from qilu_hub.sdk import BleMatcher, Manifest, MdnsMatcher

MATTER_BLE_SERVICE = "0000fff6-0000-1000-8000-00805f9b34fb"

MANIFEST = Manifest(
    name="matter",
    version="1.0.0",
    title="Matter",
    mdns=(MdnsMatcher("_matterc._udp.local."), MdnsMatcher("_matter._tcp.local.")),
    ble=(BleMatcher(service_data_uuid=MATTER_BLE_SERVICE),),
    capabilities=("on_off", "level", "color_temperature", "thermostat", "contact", "occupancy", "temperature",
                  "humidity", "illuminance", "cover_position", "lock", "fan", "power", "energy", "battery"),
    quality="bronze",  # its simulator is matter.js (tests/testbeds/matter_devices), not a Python one beside it
    iot_class="local_push",
    requirements=("python-matter-server==7.0.1",),
    documentation="docs/matter.md",
    driver=f"{__package__}.driver:MatterDriver",
)
