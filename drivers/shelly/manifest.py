"""The shelly driver's manifest: data only, importable without the driver's protocol library.

The hub reads it to match adverts; ``driver`` names the class it imports when one first matches.
"""

from __future__ import annotations

from qilu_hub.sdk import Manifest, MdnsMatcher

MANIFEST = Manifest(
    name="shelly",
    version="1.0.0",
    title="Shelly Gen2+",
    mdns=(MdnsMatcher("_shelly._tcp.local.", {"gen": "[234]"}),),
    capabilities=("on_off", "power", "energy", "voltage", "cover_position", "temperature"),
    quality="silver",
    iot_class="local_push",
    requirements=("aioshelly>=12.0",),
    documentation="https://shelly-api-docs.shelly.cloud/gen2/",
    driver=f"{__package__}.driver:ShellyDriver",
)
