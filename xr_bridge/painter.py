"""Panel images painted off the frame loop: a painter process rasterizes views, the frame loop swaps them in.

One state shown on many panels used to redraw every one of them between xrWaitFrame and xrEndFrame: a change
on 20 panels cost about 15 ms of Pillow inside a 90 Hz frame (11.1 ms). Now the frame loop paints at most a
couple of panels itself (so a change on one or two still shows in the frame it arrived) and asks
:class:`Painter` for the rest; each later frame swaps in those that are finished.

The painter is a separate **process**, not a thread: Pillow's drawing is mostly Python between its C calls, so
a painter thread holds the GIL for milliseconds at a time, and the frame loop, which gives the GIL up in every
OpenXR and Vulkan call, waited for it after each (measured: p99 frame time 76 ms with 20 panels changing).
Pixels come back through one shared-memory block per panel, so the frame loop copies each image once, into
the swapchain's staging memory, as before; requests and answers are small pickles over a pipe.

A request names the view the panel shows now (its base) as well as the wanted one, and the painter sends back
only the rectangle in which the two differ (render.paint_region): a sensor's value changing on 100 panels
costs 100 small rectangles, not 100 panels. An answer is used only while the panel still shows that base.

One request per panel is in flight at a time; a newer request asked for meanwhile waits, and an image that is
no longer wanted is dropped, never shown.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import select
from collections.abc import Callable, Hashable
from multiprocessing.shared_memory import SharedMemory
from typing import Any

__all__ = ["Painter"]

_LOG = logging.getLogger(__name__)

Rect = tuple[int, int, int, int]
# (base view or None, view, layout) -> the rectangle that differs and its RGBA rows, or None if none does
Render = Callable[[Any, Any, Any], "tuple[Rect, bytes] | None"]
Key = tuple[Hashable, Hashable]  # (base, view): what a request paints
Done = tuple[Key, "Rect | None", memoryview]


def _buffer(block: SharedMemory) -> memoryview:
    buf = block.buf
    assert buf is not None, "a shared block used after close"
    return buf


def _serve(conn: multiprocessing.connection.Connection, render: Render) -> None:
    """The painter process: paint each request into the panel's shared block, answer with its rectangle and
    size (None: nothing to draw)."""
    blocks: dict[str, SharedMemory] = {}
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                return
            if msg is None:
                return
            panel_id, block_name, base, view, layout = msg
            try:
                painted = render(base, view, layout)
                if painted is None:
                    conn.send((panel_id, None))
                    continue
                rect, pixels = painted
                block = blocks.get(panel_id)
                if block is None or block.name != block_name:
                    if block is not None:
                        block.close()
                    block = blocks[panel_id] = SharedMemory(block_name)
                _buffer(block)[: len(pixels)] = pixels
                conn.send((panel_id, (rect, len(pixels))))
            except Exception as err:  # a view that cannot be drawn costs that panel, never the others
                conn.send((panel_id, repr(err)))
    finally:
        for block in blocks.values():
            block.close()


class Painter:
    """Paints panel views in a child process; ``take`` hands a finished rectangle (a view of shared memory)
    over."""

    __slots__ = ("_blocks", "_conn", "_done", "_in_flight", "_poller", "_proc", "_queued", "_sizes", "working")

    def __init__(self, render: Render, sizes: dict[str, int]) -> None:
        """``sizes``: each panel's image size in bytes (its shared block is made that big once)."""
        ctx = multiprocessing.get_context("spawn")  # never fork a process holding an OpenXR session
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, render), name="qilu-panel-painter", daemon=True)
        self._proc.start()
        child.close()
        # Connection.poll builds a selector per call (about 0.1 ms): one poll object, asked once per frame
        self._poller = select.poll()
        self._poller.register(self._conn.fileno(), select.POLLIN)
        self._sizes = dict(sizes)
        self._blocks: dict[str, SharedMemory] = {}
        self._in_flight: dict[str, Key] = {}
        self._queued: dict[str, tuple[Key, Any]] = {}
        self._done: dict[str, Done] = {}
        self.working = True  # False once the painter process is gone: the frame loop then paints by itself

    @property
    def pid(self) -> int | None:
        """The painter process's id (benchmarks read its CPU time)."""
        return self._proc.pid

    def request(self, panel_id: str, base: Hashable, view: Hashable, layout: Any) -> None:
        """Paint what differs between ``base`` (what the panel shows; None: nothing yet) and ``view`` unless that
        is already being painted or finished (as of the last :meth:`collect`)."""
        key = (base, view)
        done = self._done.get(panel_id)
        if done is not None and done[0] == key:
            return
        self._done.pop(panel_id, None)  # another request's rectangle: stale
        if panel_id in self._in_flight:
            if self._in_flight[panel_id] != key:
                self._queued[panel_id] = (key, layout)
            else:
                self._queued.pop(panel_id, None)
            return
        self._send(panel_id, key, layout)

    def take(self, panel_id: str) -> Done | None:
        """The finished request for the panel, if any (as of the last :meth:`collect`): its (base, view), the
        rectangle (None: the two are drawn alike) and its pixels. The memory stays valid until the next request
        for the panel: upload it before asking again."""
        return self._done.pop(panel_id, None)

    def forget(self, panel_id: str) -> None:
        """The panel was painted in the frame loop meanwhile: drop what waits for it."""
        self._queued.pop(panel_id, None)
        self._done.pop(panel_id, None)

    def close(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self._conn.send(None)
        self._proc.join(5.0)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5.0)
        self._conn.close()
        self._done.clear()
        for block in self._blocks.values():
            with contextlib.suppress(BufferError):  # an image still referenced elsewhere: freed with it
                block.close()
            with contextlib.suppress(FileNotFoundError):
                block.unlink()
        self._blocks.clear()

    def _send(self, panel_id: str, key: Key, layout: Any) -> None:
        block = self._blocks.get(panel_id)
        if block is None:
            block = self._blocks[panel_id] = SharedMemory(create=True, size=max(1, self._sizes[panel_id]))
        self._in_flight[panel_id] = key
        try:
            self._conn.send((panel_id, block.name, *key, layout))
        except OSError as err:
            self._lost(err)

    def _lost(self, err: BaseException) -> None:
        if self.working:
            _LOG.error("the panel painter process is gone (%s); panels are painted in the frame loop from now on",
                       err)
        self.working = False
        self._in_flight.clear()
        self._queued.clear()

    def collect(self) -> None:
        """Take every answer that has arrived (never waits); once per frame, before take and request."""
        while self.working and self._poller.poll(0):
            try:
                panel_id, result = self._conn.recv()
            except (OSError, EOFError) as err:  # killed (out of memory?) or crashed
                self._lost(err)
                return
            key = self._in_flight.pop(panel_id)
            queued = self._queued.pop(panel_id, None)
            if isinstance(result, str):
                _LOG.error("painting panel %s failed: %s", panel_id, result)
            elif queued is None or queued[0] == key:
                if result is None:
                    self._done[panel_id] = (key, None, memoryview(b""))
                else:
                    rect, size = result
                    self._done[panel_id] = (key, rect, _buffer(self._blocks[panel_id])[:size])
            if queued is not None and queued[0] != key:
                self._send(panel_id, *queued)
