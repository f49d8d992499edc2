"""Real test beds shared by the suite: network namespaces for mDNS, a mock BlueZ on a private D-Bus.

Import the modules directly (``from tests.testbeds.netns import EmulatedLan``); each
module documents its fixture-friendly helpers. Nothing here mocks the hub's code.
"""
