"""Simulated Xiaomi LYWSDCGQ thermometers: unencrypted MiBeacon v3 adverts that xiaomi-ble parses."""

from __future__ import annotations

import random

from hub.discovery.models import BleInfo

from .payload import SERVICE_UUID, encode


class XiaomiSimulator:
    def __init__(self, serial: int = 1) -> None:
        self.address = f"58:2D:34:10:{serial >> 8 & 0xFF:02X}:{serial & 0xFF:02X}"
        self.counter = 0
        self.temperature = 24.3
        self.humidity = 55.0
        self.battery = 93

    def step(self) -> None:
        self.counter = (self.counter + 1) & 0xFF
        self.temperature = round(self.temperature + random.uniform(-0.1, 0.1), 1)
        self.humidity = round(min(99.0, max(1.0, self.humidity + random.uniform(-0.3, 0.3))), 1)

    def service_data(self) -> bytes:
        # Real sensors alternate objects; temperature+humidity every advert, battery every tenth.
        battery = self.battery if self.counter % 10 == 0 else None
        return encode(self.address, self.counter, temperature=self.temperature, humidity=self.humidity,
                      battery=battery)

    def advert(self, rssi: int = -67) -> BleInfo:
        return BleInfo(address=self.address, name="MJ_HT_V1", rssi=rssi,
                       service_data={SERVICE_UUID: self.service_data()}, service_uuids=(SERVICE_UUID,),
                       connectable=False)
