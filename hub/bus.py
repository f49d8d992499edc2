"""The event bus: typed events, inline listeners and bounded subscriptions.

Two ways to receive events:

* ``listen`` registers a synchronous callback that runs inline when the event is
  fired. It is the fast path (the state machine, the recorder and the API's fan-out
  use it) and must not block; an exception in it is logged and counted, never
  propagated to the code that fired the event.
* ``subscribe`` returns a :class:`Subscription`, an async iterator with a bounded
  queue. When a consumer falls behind, the oldest events are dropped and counted,
  so one slow consumer cannot grow memory without limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from .context import Context

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

MATCH_ALL = "*"


class EventType(str, Generic[T]):
    """An event name that also carries, for type checkers, the type of its data."""

    __slots__ = ()


class Event(Generic[T]):
    """One fired event. Created on every state write, hence ``__slots__``."""

    __slots__ = ("context", "data", "event_type", "time_fired")

    def __init__(self, event_type: str, data: T, context: Context | None, time_fired: float) -> None:
        self.event_type = event_type
        self.data = data
        self.context = context
        self.time_fired = time_fired

    def __repr__(self) -> str:
        return f"<Event {self.event_type} {self.data!r}>"


Callback = Callable[[Event[Any]], None]
EventFilter = Callable[[Event[Any]], bool]


class _Listener:
    __slots__ = ("callback", "event_filter")

    def __init__(self, callback: Callback, event_filter: EventFilter | None) -> None:
        self.callback = callback
        self.event_filter = event_filter


class Subscription:
    """A bounded queue of events, consumed with ``async for`` or :meth:`get`."""

    __slots__ = ("_bus", "_closed", "_event_types", "_listener", "_queue", "_waiter", "dropped", "maxsize")

    def __init__(self, bus: EventBus, event_types: tuple[str, ...], maxsize: int) -> None:
        self._bus = bus
        self._event_types = event_types
        self._queue: deque[Event[Any]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._listener: _Listener | None = None
        self.maxsize = maxsize
        self.dropped = 0

    def _put(self, event: Event[Any]) -> None:
        queue = self._queue
        if len(queue) >= self.maxsize:
            queue.popleft()
            self.dropped += 1
        queue.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def qsize(self) -> int:
        return len(self._queue)

    async def get(self) -> Event[Any]:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def get_nowait(self) -> Event[Any] | None:
        return self._queue.popleft() if self._queue else None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            for event_type in self._event_types:
                self._bus._remove(event_type, self._listener)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event[Any]:
        return await self.get()


class EventBus:
    """Fires events to listeners registered per event type (or ``*`` for all)."""

    __slots__ = ("_listeners", "errors", "fired")

    def __init__(self) -> None:
        self._listeners: dict[str, list[_Listener]] = {}
        self.fired = 0
        self.errors = 0

    def listen(
        self, event_type: str, callback: Callback, event_filter: EventFilter | None = None
    ) -> Callable[[], None]:
        """Call ``callback(event)`` inline for each matching event; returns an unsubscribe function."""
        listener = _Listener(callback, event_filter)
        self._add(event_type, listener)
        return lambda: self._remove(event_type, listener)

    def subscribe(
        self,
        event_types: str | Iterable[str] = MATCH_ALL,
        event_filter: EventFilter | None = None,
        maxsize: int = 1024,
    ) -> Subscription:
        """A bounded queue of matching events; close it when done."""
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        types = (event_types,) if isinstance(event_types, str) else tuple(event_types)
        sub = Subscription(self, types, maxsize)
        sub._listener = _Listener(sub._put, event_filter)
        for event_type in types:
            self._add(event_type, sub._listener)
        return sub

    def listener_count(self, event_type: str | None = None) -> int:
        if event_type is None:
            return sum(len(v) for v in self._listeners.values())
        return len(self._listeners.get(event_type, ()))

    def _add(self, event_type: str, listener: _Listener) -> None:
        # Copy on write: firing iterates the list without taking a copy each time.
        self._listeners[event_type] = [*self._listeners.get(event_type, ()), listener]

    def _remove(self, event_type: str, listener: _Listener) -> None:
        current = self._listeners.get(event_type)
        if current and listener in current:
            remaining = [item for item in current if item is not listener]
            if remaining:
                self._listeners[event_type] = remaining
            else:
                del self._listeners[event_type]

    def fire(self, event_type: EventType[T] | str, data: T, context: Context | None = None) -> None:
        listeners = self._listeners.get(event_type)
        match_all = self._listeners.get(MATCH_ALL)
        if listeners is None and match_all is None:
            return
        self.fired += 1
        event: Event[T] = Event(event_type, data, context, time.time())
        if listeners is not None:
            self._dispatch(listeners, event)
        if match_all is not None:
            self._dispatch(match_all, event)

    def _dispatch(self, listeners: list[_Listener], event: Event[Any]) -> None:
        for listener in listeners:
            try:
                if listener.event_filter is None or listener.event_filter(event):
                    listener.callback(event)
            except Exception:  # a broken listener must not break the writer or other listeners
                self.errors += 1
                _LOGGER.exception("Listener %r failed on %s", listener.callback, event.event_type)
