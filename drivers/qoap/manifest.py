"""The qoap driver's manifest: data only, importable without the driver's protocol library.

The hub reads it to match adverts; ``driver`` names the class it imports when one first matches.
"""

from __future__ import annotations

from qilu_hub.sdk import CAPABILITIES, BleMatcher, Manifest, MdnsMatcher

from . import profile

MANIFEST = Manifest(
    name="qoap",
    version="1.0.0",
    title="Qilu Open Appliance Profile",
    mdns=(MdnsMatcher(profile.MDNS_TYPE, {"pv": "1.*"}),),
    # §7: the service UUID in the advert's UUID list or as the key of its service data.
    ble=(BleMatcher(service_uuid=profile.BLE_SERVICE_UUID), BleMatcher(service_data_uuid=profile.BLE_SERVICE_UUID)),
    capabilities=tuple(sorted(CAPABILITIES)),
    quality="gold",
    iot_class="local_push",
    documentation="docs/appliance-profile.md",
    driver=f"{__package__}.driver:QoapDriver",
)
