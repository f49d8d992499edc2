"""The xiaomi driver's manifest: data only, importable without the driver's protocol library.

The hub reads it to match adverts; ``driver`` names the class it imports when one first matches.
"""

from __future__ import annotations

from qilu_hub.sdk import BleMatcher, Manifest

SERVICE_UUID = "0000fe95-0000-1000-8000-00805f9b34fb"

MANIFEST = Manifest(
    name="xiaomi",
    version="1.0.0",
    title="Xiaomi BLE (MiBeacon)",
    ble=(BleMatcher(service_data_uuid=SERVICE_UUID),),
    capabilities=("temperature", "humidity", "battery", "illuminance", "motion", "moisture", "door"),
    quality="bronze",
    iot_class="local_push",
    requirements=("xiaomi-ble>=0.30",),
    documentation="https://github.com/custom-components/ble_monitor",
    driver=f"{__package__}.driver:XiaomiDriver",
)
