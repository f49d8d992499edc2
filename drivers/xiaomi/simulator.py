"""Simulated Xiaomi thermometers that xiaomi-ble parses: a LYWSDCGQ (unencrypted MiBeacon v3 adverts), or,
given a 16-byte ``bind_key``, a LYWSD03MMC with stock firmware (encrypted MiBeacon v5 adverts, one
measurement each, as the real one sends them)."""

from __future__ import annotations

import random

from qilu_hub.sdk import BleInfo

from .payload import SERVICE_UUID, encode, encode_encrypted


class XiaomiSimulator:
    def __init__(self, serial: int = 1, bind_key: bytes | None = None) -> None:
        self.bind_key = bind_key
        prefix = "58:2D:34:10" if bind_key is None else "A4:C1:38:20"
        self.address = f"{prefix}:{serial >> 8 & 0xFF:02X}:{serial & 0xFF:02X}"
        self.name = "MJ_HT_V1" if bind_key is None else "LYWSD03MMC"
        self.counter = 0
        self.ext_counter = serial * 1000  # the extended counter of encrypted frames; random on real sensors
        self.temperature = 24.3
        self.humidity = 55.0
        self.battery = 93

    def step(self) -> None:
        self.counter = (self.counter + 1) & 0xFF
        self.ext_counter = (self.ext_counter + 1) & 0xFFFFFF
        self.temperature = round(self.temperature + random.uniform(-0.1, 0.1), 1)
        self.humidity = round(min(99.0, max(1.0, self.humidity + random.uniform(-0.3, 0.3))), 1)

    def service_data(self) -> bytes:
        if self.bind_key is not None:
            # The LYWSD03MMC rotates temperature, humidity and battery, one per frame.
            which = self.counter % 3
            return encode_encrypted(self.address, self.counter, self.bind_key, self.ext_counter,
                                    temperature=self.temperature if which == 0 else None,
                                    humidity=self.humidity if which == 1 else None,
                                    battery=self.battery if which == 2 else None)
        # Real sensors alternate objects; temperature+humidity every advert, battery every tenth.
        battery = self.battery if self.counter % 10 == 0 else None
        return encode(self.address, self.counter, temperature=self.temperature, humidity=self.humidity,
                      battery=battery)

    def advert(self, rssi: int = -67) -> BleInfo:
        return BleInfo(address=self.address, name=self.name, rssi=rssi,
                       service_data={SERVICE_UUID: self.service_data()}, service_uuids=(SERVICE_UUID,),
                       connectable=False)
