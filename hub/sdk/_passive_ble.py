"""Passive BLE sensors: no connection, just adverts parsed by a sensor-state-data parser.

The "connection" of a passive sensor is its parser: the driver manager hands every
advert of an adopted sensor to ``discovery_updated``; the parser's values become states.
Entities appear as the sensor reveals its measurements.

Encrypted sensors: the driver builds the parser with the sensor's bind key and passes
``is_encrypted`` (reads the advert's encryption flag). The connection then keeps a
:attr:`PassiveBleConnection.problem`: ``wrong_bind_key`` after a few encrypted adverts
in a row fail to decrypt, ``needs_bind_key`` if encrypted adverts come and no key was
given. Plaintext adverts from a sensor with a key are dropped (anyone can send them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bleak.backends.device import BLEDevice
from habluetooth import BluetoothServiceInfoBleak
from sensor_state_data import SensorUpdate

from ..capabilities import CommandError
from ..discovery.models import BleInfo, DiscoveryInfo
from ._driver import DeviceConnection, DiscoveredAppliance
from ._entity import EntityDescription, EntityPublisher

if TYPE_CHECKING:
    from ..context import Context
    from ..model import Entity
    from ._context import DeviceContext

_LOGGER = logging.getLogger(__name__)

# sensor-state-data device classes -> our capabilities.
SENSOR_CAPABILITIES = {
    "temperature": "temperature", "humidity": "humidity", "battery": "battery", "illuminance": "illuminance",
    "pressure": "pressure", "carbon_dioxide": "co2", "pm25": "pm25", "power": "power", "energy": "energy",
    "voltage": "voltage",
}
BINARY_CAPABILITIES = {
    "motion": "motion", "occupancy": "occupancy", "door": "door", "window": "window", "opening": "contact",
    "moisture": "moisture", "smoke": "smoke",
}


def to_service_info(info: BleInfo) -> BluetoothServiceInfoBleak:
    """The parsers' input type; they read the advert's time to drop duplicates, so it must be the real one."""
    device = BLEDevice(info.address, info.name, {})
    return BluetoothServiceInfoBleak(info.name or "", info.address, info.rssi, dict(info.manufacturer_data),
                                     dict(info.service_data), list(info.service_uuids), info.adapter, device, None,
                                     info.connectable, time_monotonic(info.time), None)


def parser_supports(parser: Any, info: BleInfo) -> bool:
    """``parser.supported``, with the parser library's crashes on malformed adverts read as "no".

    bthome-ble raises IndexError, OverflowError, AssertionError, ValueError... on hostile payloads
    (found by fuzz/targets/ble.py); anyone in radio range can send them.
    """
    try:
        return bool(parser.supported(to_service_info(info)))
    except Exception:  # the library's bug must cost this advert only
        return False


def parse_advert(parser: Any, info: BleInfo) -> SensorUpdate | None:
    """``parser.update``; None when the library crashes on the advert (see :func:`parser_supports`)."""
    try:
        return parser.update(to_service_info(info))
    except Exception:
        return None


def time_monotonic(wall: float) -> float:
    # habluetooth stamps adverts with the monotonic clock; BleInfo carries wall time.
    return time.monotonic() - max(0.0, time.time() - wall)


def _device_class(desc: Any) -> str | None:
    device_class = getattr(desc, "device_class", None)
    return getattr(device_class, "value", device_class)


def update_to_data(update: SensorUpdate) -> tuple[dict[str, Any], list[EntityDescription]]:
    """Flatten a parser update into {key: value} and the descriptions of the keys we can represent."""
    data: dict[str, Any] = {}
    descs: list[EntityDescription] = []
    for device_key, value in update.entity_values.items():
        desc = update.entity_descriptions.get(device_key)
        cap = SENSOR_CAPABILITIES.get(str(_device_class(desc))) if desc is not None else None
        if cap is None or value.native_value is None:
            continue
        try:
            number = float(value.native_value)  # type: ignore[arg-type]
        except (TypeError, ValueError):  # a text value where a number belongs: a malformed advert
            continue
        key = device_key.key
        data[key] = number
        descs.append(EntityDescription(key, value.name or key.replace("_", " ").title(), (cap,), value=key,
                                       entity_category="diagnostic" if cap in ("battery", "voltage") else None))
    for device_key, bvalue in update.binary_entity_values.items():
        bdesc = update.binary_entity_descriptions.get(device_key)
        cap = BINARY_CAPABILITIES.get(str(_device_class(bdesc))) if bdesc is not None else None
        if cap is None or bvalue.native_value is None:
            continue
        key = device_key.key
        data[key] = "on" if bvalue.native_value else "off"
        descs.append(EntityDescription(key, bvalue.name or key.title(), (cap,), value=key))
    return data, descs


# Encrypted adverts in a row that must fail to decrypt before the key is called wrong: one failure may be a
# corrupted or spoofed advert, a wrong key fails every one.
WRONG_KEY_AFTER = 3
# With a wrong key, one advert per this many seconds still goes to the parser (to notice when the failures were
# someone else's adverts); the parser libraries log a warning per failed decryption, so not every advert.
WRONG_KEY_PROBE_INTERVAL = 60.0

PROBLEM_MESSAGES = {
    "needs_bind_key": "the sensor encrypts its adverts: adopt it again with its bind key",
    "wrong_bind_key": "the bind key does not decrypt the sensor's adverts: adopt it again with the right key",
}

# A sensor silent for this long is marked unavailable (BTHome and MiBeacon sensors advertise every few seconds
# to a minute; sleepy ones at least every 10 minutes).
STALE_AFTER = 900.0


class PassiveBleConnection(DeviceConnection):
    """Feeds adverts to a parser made by ``parser_factory`` and publishes what it reads.

    A passive sensor cannot be reconnected: when its adverts stop for ``stale_after`` seconds its
    entities go unavailable, and the next advert brings them back.
    """

    def __init__(self, context: DeviceContext, appliance: DiscoveredAppliance, parser_factory: Callable[[], Any],
                 stale_after: float = STALE_AFTER, *, is_encrypted: Callable[[BleInfo], bool] | None = None,
                 has_bind_key: bool = False) -> None:
        self.appliance = appliance
        self.driver_name = context.driver
        self.is_encrypted = is_encrypted
        self.has_bind_key = has_bind_key
        self.problem: str | None = None  # a key of PROBLEM_MESSAGES
        self.decrypt_failures = 0  # in a row
        self.plaintext_dropped = 0
        self._last_probe = 0.0
        self.parser = parser_factory()
        self.publisher = EntityPublisher(context, f"{context.driver}:{appliance.key}", ())
        self.adverts = 0
        self.bad_adverts = 0
        self.stale_after = stale_after
        self.last_advert = time.monotonic()
        self.stale = False
        self._watchdog: asyncio.Task[None] | None = None

    async def async_start(self) -> None:
        self.publisher.register()  # entities adopted before a restart come back at once (then "unavailable")
        self.last_advert = time.monotonic()
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, self.stale_after / 4))
            if not self.stale and time.monotonic() - self.last_advert > self.stale_after:
                self.stale = True
                self.publisher.set_unavailable()

    async def async_stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)

    def discovery_updated(self, info: DiscoveryInfo) -> None:
        if not isinstance(info, BleInfo) or info.address.upper() != self.appliance.key.upper():
            return
        encrypted = self.is_encrypted is not None and self.is_encrypted(info)
        if encrypted and not self._decryptable():
            return
        if self.has_bind_key and not encrypted:
            self.plaintext_dropped += 1  # a downgrade: an encrypted sensor does not send plaintext, a spoofer can
            return
        update = parse_advert(self.parser, info)
        if update is None:  # malformed (or spoofed) advert: drop it, keep the sensor
            self.bad_adverts += 1
            return
        if encrypted and not self._decrypted():
            return
        data, descs = update_to_data(update)
        for desc in descs:
            if desc.key not in self.publisher.entities:
                self.publisher.add(desc)
        self.adverts += 1
        self.last_advert = time.monotonic()
        self.stale = False
        self.publisher.publish(data)

    def _decryptable(self) -> bool:
        """Whether this encrypted advert goes to the parser; sets the problem when it cannot."""
        if not self.has_bind_key:
            self.bad_adverts += 1
            self._set_problem("needs_bind_key")
            return False
        if self.problem == "wrong_bind_key":
            now = time.monotonic()
            if now - self._last_probe < WRONG_KEY_PROBE_INTERVAL:
                self.bad_adverts += 1
                return False
            self._last_probe = now
        return True

    def _decrypted(self) -> bool:
        """After the parser ran on an encrypted advert: did the key open it? Tracks the wrong-key problem."""
        if getattr(self.parser, "decryption_failed", False):
            self.bad_adverts += 1
            self.decrypt_failures += 1
            if self.decrypt_failures >= WRONG_KEY_AFTER:
                self._last_probe = time.monotonic()
                self._set_problem("wrong_bind_key")
            return False
        self.decrypt_failures = 0
        self._set_problem(None)
        return True

    def _set_problem(self, problem: str | None) -> None:
        if problem == self.problem:
            return
        previous, self.problem = self.problem, problem
        # Logged on change only: a sensor advertises every few seconds. Never the key, only what is wrong.
        if problem is not None:
            _LOGGER.warning("%s %s: %s", self.driver_name, self.appliance.key, PROBLEM_MESSAGES[problem])
            self.publisher.set_unavailable()
        elif previous is not None:
            _LOGGER.info("%s %s: adverts decrypt again", self.driver_name, self.appliance.key)

    async def async_command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        raise CommandError("not_supported", f"{entity.entity_id} is a passive sensor")
