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

A request carries the wanted view and the rectangle in which it differs from what the panel shows (the
caller's render.dirty_rect), and the painter sends back only that rectangle's pixels: a sensor's value changing
on 100 panels costs 100 small rectangles, not 100 panels. Each request has a key, the caller's (shown view,
wanted view): an answer is used only while both still hold. Layouts go to the process once, at its start, and
requests are sent a few per frame at most (``budget``): pickling 100 views in the frame a burst arrives took
4-7 ms of the frame loop's CPU, and the painter cannot use them faster than the frame loop swaps images in.

One request per panel is in flight at a time; a newer request asked for meanwhile waits, and an image that is
no longer wanted is dropped, never shown.

The painter runs at a lower CPU priority than the frame loop (``PAINTER_NICENESS``): its images are wanted a frame
or more later anyway, while the frame loop, the runtime's compositor and (with a CPU Vulkan driver) the image
copies must finish within the refresh. On a machine with few cores all of them compete for the same CPUs when a
burst is painted; the scheduler then gives the painter what is left over.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import select
from collections.abc import Callable, Hashable, Mapping
from multiprocessing.shared_memory import SharedMemory
from typing import Any

__all__ = ["Painter"]

_LOG = logging.getLogger(__name__)

Rect = tuple[int, int, int, int]
Render = Callable[[Any, Any, Rect], bytes]  # (view, layout, rectangle) -> that rectangle's RGBA rows
Done = tuple[Hashable, Rect, memoryview]  # (request key, rectangle, its pixels)
PAINTER_NICENESS = 10  # added to the bridge's niceness in the painter process (CFS weight about a tenth)


def _buffer(block: SharedMemory) -> memoryview:
    buf = block.buf
    assert buf is not None, "a shared block used after close"
    return buf


def _serve(conn: multiprocessing.connection.Connection, render: Render, layouts: Mapping[str, Any]) -> None:
    """The painter process: paint each request's rectangle into the panel's shared block, answer with its size."""
    with contextlib.suppress(OSError):  # a sandbox may refuse it; the painter then works at the frame loop's priority
        os.nice(PAINTER_NICENESS)
    blocks: dict[str, SharedMemory] = {}
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                return
            if msg is None:
                return
            panel_id, block_name, view, rect = msg
            try:
                pixels = render(view, layouts[panel_id], rect)
                block = blocks.get(panel_id)
                if block is None or block.name != block_name:
                    if block is not None:
                        block.close()
                    block = blocks[panel_id] = SharedMemory(block_name)
                _buffer(block)[: len(pixels)] = pixels
                conn.send((panel_id, len(pixels)))
            except Exception as err:  # a view that cannot be drawn costs that panel, never the others
                conn.send((panel_id, repr(err)))
    finally:
        for block in blocks.values():
            block.close()


class Painter:
    """Paints panel views in a child process; ``take`` hands a finished rectangle (a view of shared memory)
    over."""

    __slots__ = ("_blocks", "_conn", "_done", "_in_flight", "_poller", "_proc", "_queued", "_sizes", "working")

    def __init__(self, render: Render, layouts: Mapping[str, Any]) -> None:
        """``layouts``: each panel's layout (``width`` x ``height`` pixels; its shared block is made that big,
        once)."""
        ctx = multiprocessing.get_context("spawn")  # never fork a process holding an OpenXR session
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, render, dict(layouts)), name="qilu-panel-painter",
                                 daemon=True)
        self._proc.start()
        child.close()
        # Connection.poll builds a selector per call (about 0.1 ms): one poll object, asked once per frame
        self._poller = select.poll()
        self._poller.register(self._conn.fileno(), select.POLLIN)
        self._sizes = {pid: lay.width * lay.height * 4 for pid, lay in layouts.items()}
        self._blocks: dict[str, SharedMemory] = {}
        self._in_flight: dict[str, tuple[Hashable, Rect]] = {}
        self._queued: dict[str, tuple[Hashable, Any, Rect]] = {}
        self._done: dict[str, Done] = {}
        self.working = True  # False once the painter process is gone: the frame loop then paints by itself

    @property
    def pid(self) -> int | None:
        """The painter process's id (benchmarks read its CPU time)."""
        return self._proc.pid

    def request(self, panel_id: str, key: Hashable, view: Any, rect: Rect) -> bool:
        """Paint ``rect`` of ``view`` for the panel, unless the request ``key`` is already being painted or
        finished (as of the last :meth:`collect`). True if a request was sent now (what the caller budgets)."""
        done = self._done.get(panel_id)
        if done is not None and done[0] == key:
            return False
        self._done.pop(panel_id, None)  # another request's rectangle: stale
        if panel_id in self._in_flight:
            if self._in_flight[panel_id][0] != key:
                self._queued[panel_id] = (key, view, rect)
            else:
                self._queued.pop(panel_id, None)
            return False
        self._send(panel_id, key, view, rect)
        return True

    def take(self, panel_id: str) -> Done | None:
        """The finished request for the panel, if any (as of the last :meth:`collect`): its key, rectangle and
        pixels. The memory stays valid until the next request for the panel: upload it before asking again."""
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

    def _send(self, panel_id: str, key: Hashable, view: Any, rect: Rect) -> None:
        block = self._blocks.get(panel_id)
        if block is None:
            block = self._blocks[panel_id] = SharedMemory(create=True, size=max(1, self._sizes[panel_id]))
        self._in_flight[panel_id] = (key, rect)
        try:
            self._conn.send((panel_id, block.name, view, rect))
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
            key, rect = self._in_flight.pop(panel_id)
            queued = self._queued.pop(panel_id, None)
            if isinstance(result, str):
                _LOG.error("painting panel %s failed: %s", panel_id, result)
            elif queued is None or queued[0] == key:
                self._done[panel_id] = (key, rect, _buffer(self._blocks[panel_id])[:result])
            if queued is not None and queued[0] != key:
                self._send(panel_id, *queued)
