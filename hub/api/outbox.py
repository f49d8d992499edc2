"""One flush per event-loop turn for every WebSocket with something to send, and waiting out a full socket.

A state change reaches each subscribed connection as an append to its queue (or, for connections in step
with a shared channel, one append to the channel's window: see :mod:`.ha_fanout`); the connection or channel
asks the :class:`Flusher` to flush it, and the flusher writes every such queue once, after the code that
fired the events has finished its turn of the loop. All connections share that coalescing window: a burst of
writes becomes one ``transport.write`` per connection, and no connection's task is woken per event.

Flushing every connection costs a system call each; with hundreds of connections and a change every
millisecond that is most of a core. So the next window opens no sooner than the last flush took (flushing
then takes at most half of the loop's time), capped at ``MAX_WINDOW``: with one client a flush takes
microseconds and changes go out at once; with hundreds, the changes of a millisecond or two go out together,
one write per connection.

A connection whose client does not read fills its socket; the transport then pauses its protocol
(``pause_writing``), and the connection stops writing until the protocol resumes. Only that connection's own
writer task waits (on aiohttp's drain future, not a polling loop), so it costs the others nothing.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

# The longest a change waits for its window: the latency a busy hub trades for fewer system calls.
MAX_WINDOW = 0.002


class Flushable(Protocol):
    def flush(self) -> None: ...


class Flusher:
    """The connections (and shared channels) to flush at the end of the current loop turn."""

    __slots__ = ("_channels", "_dirty", "_next", "_scheduled", "flushes")

    def __init__(self) -> None:
        self._dirty: list[Flushable] = []
        self._channels: list[Flushable] = []
        self._scheduled = False
        self._next = 0.0  # loop time before which the next window does not open
        self.flushes = 0

    def mark(self, conn: Flushable) -> None:
        """Flush ``conn`` soon; the caller keeps its own flag so that it is marked once per window."""
        self._dirty.append(conn)
        self._schedule()

    def mark_channel(self, channel: Flushable) -> None:
        """Flush a shared channel soon, before any connection: a connection that rejoins a channel in its own
        flush must find that channel's window already written (or it would receive it twice)."""
        self._channels.append(channel)
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            loop = asyncio.get_running_loop()
            if loop.time() >= self._next:
                loop.call_soon(self._flush)
            else:
                loop.call_at(self._next, self._flush)

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        self._scheduled = False
        self.flushes += 1
        channels, self._channels = self._channels, []
        for channel in channels:
            channel.flush()
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.flush()
        end = loop.time()
        # Capped: a slow flush (a large batch, or the process preempted) must not open ever longer windows.
        self._next = end + min(end - start, MAX_WINDOW)


def writing_paused(protocol: object) -> bool:
    """Whether the socket's buffer is over its high-water mark (the transport told the protocol to pause).

    ``protocol`` is aiohttp's request handler (``request.protocol``): the transport's own protocol may be a
    wrapper (the connection guard's), which forwards pause/resume to it.
    """
    return bool(getattr(protocol, "writing_paused", False))


async def wait_writable(protocol: object, transport: asyncio.BaseTransport) -> None:
    """Until the transport resumes writing (or the connection is lost, which raises ConnectionError)."""
    # aiohttp's BaseProtocol resolves this future in resume_writing(); it raises when the connection is lost.
    drain = getattr(protocol, "_drain_helper", None)
    if drain is not None:
        await drain()
        return
    while writing_paused(protocol) and not transport.is_closing():  # another protocol: poll, gently
        await asyncio.sleep(0.01)
