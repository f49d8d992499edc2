"""Simulated appliances never share an identity across runs: two demos (or `qilu-hub simulate` runs) on one
LAN would otherwise announce the same appliance, and each hub would follow the other's simulators."""

from __future__ import annotations

from qilu_hub.drivers.fleet import Fleet, serial_base


async def identities(fleet: Fleet) -> list[str]:
    sims = await fleet.add("fridge")
    await fleet.add("bthome", 2)
    await fleet.add("xiaomi")
    try:
        return [sims[0].device_id, sims[0].public_key(), *(sim.address for sim in fleet.ble)]
    finally:
        await fleet.stop()


async def test_fleets_have_their_own_identities_and_a_seed_repeats_them() -> None:
    seeded = await identities(Fleet(seed="demo-a"))
    assert seeded == await identities(Fleet(seed="demo-a"))  # the same seed, the same appliances
    assert not set(seeded) & set(await identities(Fleet(seed="demo-b")))  # no id, key or BLE address in common
    # Without a seed every fleet draws its own serial base and keys (not compared: a 16-bit base is random).
    first, second = Fleet(), Fleet()
    assert 1 <= first.serial_base < 0xF000 and serial_base("demo-a") == Fleet(seed="demo-a").serial_base
    assert (await identities(first))[1] != (await identities(second))[1]
