"""The drivers shipped with qilu-hub, one package each (``shelly``, ``wled``, ...), and the driver manager.

A driver imports only the SDK, :mod:`qilu_hub.sdk` (and :mod:`qilu_hub.sdk.testing` in its simulator and tests):
see docs/writing-a-driver.md. Each package's ``manifest.py`` is data; the hub imports the driver
module named in it when an advert first matches.
"""

# "module:attribute" of each built-in driver's manifest.
BUILTIN_MANIFESTS = tuple(f"{__name__}.{package}.manifest:MANIFEST"
                          for package in ("qoap", "shelly", "wled", "bthome", "xiaomi", "matter"))
