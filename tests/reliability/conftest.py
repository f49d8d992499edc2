"""Fixtures shared by the fault tests: re-exported from the driver and API test beds."""

from tests.api.conftest import env, session  # noqa: F401
from tests.drivers.conftest import advertiser, hub_with_drivers  # noqa: F401
