"""The stream client against a server speaking the msgpack stream protocol (docs/stream.md draft)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from qilu_hub.xr_bridge.stream import AuthError, CallError, StreamClient, StreamEvent, StreamThread
from qilu_hub.xr_bridge.testing import DevHub


async def _until(events: list[StreamEvent], pred: Callable[[StreamEvent], bool], n: int = 1) -> None:
    while sum(1 for e in events if pred(e)) < n:  # bounded by the pytest timeout, not by a clock assertion
        await asyncio.sleep(0.01)


async def test_snapshot_delta_call_and_errors() -> None:
    hub = DevHub("tok", ["light.a", "light.b"])
    port = await hub.start()
    events: list[StreamEvent] = []
    client = StreamClient(f"ws://127.0.0.1:{port}/api/stream", "tok", events.append, entities=["light.a"])
    task = asyncio.create_task(client.run())
    try:
        await _until(events, lambda e: e.kind == "online")
        snap = next(e for e in events if e.kind == "snapshot")
        assert list(snap.states) == ["light.a"]  # the subscription filter is honoured
        await client.call("light.a", "turn_on", {"brightness": 10})
        await _until(events, lambda e: e.kind == "delta")
        delta = next(e for e in events if e.kind == "delta")
        assert delta.states["light.a"]["v"] == "on" and delta.states["light.a"]["a"]["brightness"] == 10
        await hub.set_state("light.b", "on")  # not subscribed: no delta
        with pytest.raises(CallError) as err:
            await client.call("light.a", "set_temperature", {"temperature": 20})
        assert err.value.code == "not_supported"
        assert sum(1 for e in events if e.kind == "delta") == 1
    finally:
        client.stop()
        await task
        await hub.stop()


async def test_bad_token_is_fatal() -> None:
    hub = DevHub("right", [])
    port = await hub.start()
    events: list[StreamEvent] = []
    client = StreamClient(f"ws://127.0.0.1:{port}/api/stream", "wrong", events.append)
    with pytest.raises(AuthError):
        await client.run()
    assert [e.kind for e in events] == ["auth_failed"]
    await hub.stop()


async def test_reconnects_with_backoff_after_hub_restart() -> None:
    hub = DevHub("tok", ["light.a"])
    port = await hub.start()
    events: list[StreamEvent] = []
    client = StreamClient(f"ws://127.0.0.1:{port}/api/stream", "tok", events.append, backoff_min=0.05)
    task = asyncio.create_task(client.run())
    try:
        await _until(events, lambda e: e.kind == "online")
        await hub.stop()
        await _until(events, lambda e: e.kind == "offline", 2)  # at least one failed retry while down
        with pytest.raises(ConnectionError):
            await client.call("light.a", "toggle")
        await hub.start(port=port)
        await _until(events, lambda e: e.kind == "online", 2)
        assert client.connects == 2
        await client.call("light.a", "toggle")
    finally:
        client.stop()
        await task
        await hub.stop()


def test_thread_wrapper_delivers_results_as_events() -> None:
    hub = DevHub("tok", ["light.a"])
    loop = asyncio.new_event_loop()
    port = loop.run_until_complete(hub.start())

    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    st = StreamThread(f"ws://127.0.0.1:{port}/api/stream", "tok", ["light.a"])
    st.start()
    got: list[StreamEvent] = []
    try:
        while not any(e.kind == "online" for e in got):
            got += st.drain()
            time.sleep(0.005)
        st.call("tok-1", "light.a", "toggle", {})
        st.call("tok-2", "light.a", "explode", {})
        while sum(1 for e in got if e.kind == "result") < 2:
            got += st.drain()
            time.sleep(0.005)
        results = {e.token: e for e in got if e.kind == "result"}
        assert results["tok-1"].ok and not results["tok-2"].ok and "not_supported" in results["tok-2"].error
    finally:
        st.stop()
        asyncio.run_coroutine_threadsafe(hub.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)
