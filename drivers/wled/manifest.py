"""The wled driver's manifest: data only, importable without the driver's protocol library.

The hub reads it to match adverts; ``driver`` names the class it imports when one first matches.
"""

from __future__ import annotations

from qilu_hub.sdk import Manifest, MdnsMatcher

MANIFEST = Manifest(
    name="wled",
    version="1.0.0",
    title="WLED",
    mdns=(MdnsMatcher("_wled._tcp.local."),),
    capabilities=("on_off", "level", "color", "power"),
    quality="silver",
    iot_class="local_push",
    requirements=("wled>=0.18",),
    documentation="https://kno.wled.ge/interfaces/json-api/",
    driver=f"{__package__}.driver:WledDriver",
)
