"""One module per parser of outside input.

Each module defines ``one(data: bytes) -> None`` (raises only on a bug), ``SEEDS`` (valid inputs
that start the corpus) and optionally ``setup()`` (called once, before fuzzing) and
``INSTRUMENT`` (package names whose code coverage guides the fuzzer).
"""

__all__ = ["NAMES"]

NAMES = ("mdns", "ble", "ha_ws", "stream", "scenes", "config", "qoap", "mqtt_discovery", "mqtt_template")
