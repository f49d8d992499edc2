"""Raw loopback sockets for the hostile-client tests: watching the hub close a connection it should not keep."""

from __future__ import annotations

import asyncio


async def closed_by_hub(reader: asyncio.StreamReader, within: float) -> bool:
    """Read (discarding) until the hub closes the connection; False if it is still open after ``within`` s."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except OSError:
        pass  # reset: closed as well
    return True
