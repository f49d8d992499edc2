"""The kinds of simulated appliance a fleet can start (``qilu-hub simulate KIND``, the demo).

Data only, apart from the simulators: the command line lists these as its choices on every start, and
importing the fleet for them loaded every simulator, aiohttp's client, cryptography and zeroconf (~15 MiB)
into ``qilu-hub run``.
"""

NETWORK_KINDS = ("shelly", "shelly-cover", "wled", "air_conditioner", "fridge", "washing_machine")
BLE_KINDS = ("bthome", "bthome-motion", "xiaomi")
KINDS = NETWORK_KINDS + BLE_KINDS
