import asyncio

from qilu_hub.bus import EventBus, EventType
from qilu_hub.context import Context

PING: EventType[dict[str, int]] = EventType("ping")


def test_listener_receives_matching_events_only() -> None:
    bus = EventBus()
    seen: list[int] = []
    bus.listen(PING, lambda e: seen.append(e.data["n"]), event_filter=lambda e: e.data["n"] % 2 == 0)
    for n in range(6):
        bus.fire(PING, {"n": n})
    bus.fire("other", {"n": 100})
    assert seen == [0, 2, 4]


def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    seen: list[int] = []
    remove = bus.listen(PING, lambda e: seen.append(e.data["n"]))
    bus.fire(PING, {"n": 1})
    remove()
    bus.fire(PING, {"n": 2})
    assert seen == [1]
    assert bus.listener_count(PING) == 0


def test_failing_listener_is_isolated() -> None:
    bus = EventBus()
    seen: list[int] = []

    def broken(_event: object) -> None:
        raise RuntimeError("boom")

    bus.listen(PING, broken)
    bus.listen(PING, lambda e: seen.append(e.data["n"]))
    bus.fire(PING, {"n": 7})
    assert seen == [7]
    assert bus.errors == 1


def test_match_all_and_context() -> None:
    bus = EventBus()
    got = []
    bus.listen("*", got.append)
    ctx = Context("test")
    bus.fire(PING, {"n": 1}, ctx)
    assert got[0].context is ctx and got[0].event_type == "ping"


async def test_slow_subscriber_is_bounded_and_drops_oldest() -> None:
    bus = EventBus()
    sub = bus.subscribe(PING, maxsize=10)
    for n in range(1000):
        bus.fire(PING, {"n": n})
    assert sub.qsize() == 10
    assert sub.dropped == 990
    first = await sub.get()
    assert first.data["n"] == 990  # the newest events survive
    sub.close()
    assert bus.listener_count(PING) == 0


async def test_subscription_wakes_waiting_consumer() -> None:
    bus = EventBus()
    sub = bus.subscribe([PING, "pong"])

    async def consume() -> list[str]:
        out = []
        async for event in sub:
            out.append(event.event_type)
            if len(out) == 2:
                break
        return out

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    bus.fire(PING, {"n": 1})
    bus.fire("pong", {})
    assert await asyncio.wait_for(task, 1) == ["ping", "pong"]
    sub.close()
