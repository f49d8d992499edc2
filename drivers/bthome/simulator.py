"""Simulated BTHome v2 sensors: real advertisement payloads (bthome.io/format) for the BLE mock or the hub.

A climate sensor (temperature, humidity, battery) drifting slowly, and a motion sensor
(motion, illuminance, battery) that sees someone now and then. Given a 16-byte ``bind_key`` the sensor
encrypts its adverts as bthome.io/encryption specifies, with a counter that rises each interval.
"""

from __future__ import annotations

import random
from typing import Literal

from qilu_hub.sdk import BleInfo

from .payload import SERVICE_UUID, encode, encode_encrypted

Kind = Literal["climate", "motion"]


class BTHomeSimulator:
    def __init__(self, kind: Kind = "climate", serial: int = 1, bind_key: bytes | None = None) -> None:
        self.kind = kind
        self.bind_key = bind_key
        self.counter = 1  # the encryption counter; real sensors start anywhere and count up
        self.address = f"A4:C1:38:{0xB0 + (kind == 'motion'):02X}:{serial >> 8 & 0xFF:02X}:{serial & 0xFF:02X}"
        # Names as Shelly's BLU sensors (BTHome v2 devices) advertise them.
        self.name = "SBHT-003C" if kind == "climate" else "SBMO-003Z"
        self.packet_id = 0
        self.values: dict[str, float | int | bool] = (
            {"temperature": 22.5, "humidity": 48.0, "battery": 87} if kind == "climate"
            else {"motion": 0, "illuminance": 120.0, "battery": 76}
        )

    def step(self) -> None:
        """Advance the physics one advertising interval."""
        self.packet_id = (self.packet_id + 1) & 0xFF
        self.counter = (self.counter + 1) & 0xFFFFFFFF
        if self.kind == "climate":
            self.values["temperature"] = round(float(self.values["temperature"]) + random.uniform(-0.05, 0.05), 2)
            humidity = float(self.values["humidity"]) + random.uniform(-0.2, 0.2)
            self.values["humidity"] = round(min(100.0, max(0.0, humidity)), 2)
        else:
            self.values["motion"] = 1 if random.random() < 0.3 else 0
            self.values["illuminance"] = round(max(0.0, float(self.values["illuminance"]) + random.uniform(-5, 5)), 2)

    def service_data(self) -> bytes:
        values = {"packet_id": self.packet_id, **self.values}
        if self.bind_key is not None:
            return encode_encrypted(values, self.address, self.bind_key, self.counter)
        return encode(values)

    def advert(self, rssi: int = -60) -> BleInfo:
        return BleInfo(address=self.address, name=self.name, rssi=rssi,
                       service_data={SERVICE_UUID: self.service_data()},
                       service_uuids=(SERVICE_UUID,), connectable=False)
