"""The bthome driver's manifest: data only, importable without the driver's protocol library.

The hub reads it to match adverts; ``driver`` names the class it imports when one first matches.
"""

from __future__ import annotations

from qilu_hub.sdk import BleMatcher, Manifest

SERVICE_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"

MANIFEST = Manifest(
    name="bthome",
    version="1.0.0",
    title="BTHome",
    ble=(BleMatcher(service_data_uuid=SERVICE_UUID),),
    capabilities=("temperature", "humidity", "battery", "illuminance", "pressure", "co2", "motion", "window",
                  "door", "moisture"),
    quality="silver",
    iot_class="local_push",
    auto_adopt=False,
    requirements=("bthome-ble>=3.8",),
    documentation="https://bthome.io/format/",
    driver=f"{__package__}.driver:BTHomeDriver",
)
