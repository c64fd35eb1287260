"""Background threads with bounded queues: a producer read ahead, a consumer fed behind.

:class:`Prefetch` runs an iterator in a thread, at most ``maxsize`` items ahead of the caller;
:class:`Sink` runs a function over the items the caller puts, in a thread, at most ``maxsize``
behind. Either way an exception in the thread reaches the caller (on its next call), the
queues bound memory, and ``close``/``abort`` leave no thread blocked. Each keeps ``busy``, the
seconds its thread spent working (not waiting), for the time split.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Prefetch", "Sink"]

T = TypeVar("T")
_END = object()
_POLL_S = 0.2


def _stop_thread(stop: threading.Event, q: queue.Queue, thread: threading.Thread, *, wake: bool) -> None:
    """Set ``stop``, keep ``q`` empty (so a producer never blocks on it) and, with ``wake``, hand a
    waiting consumer the end marker, until ``thread`` has finished."""
    stop.set()
    while thread.is_alive():
        with contextlib.suppress(queue.Empty):
            while True:
                q.get_nowait()
        if wake:
            with contextlib.suppress(queue.Full):
                q.put_nowait(_END)
        thread.join(timeout=_POLL_S)


class Prefetch(Generic[T]):
    """Iterate ``source`` in a background thread (a context manager and an iterator)."""

    def __init__(self, source: Iterator[T], maxsize: int) -> None:
        self._source = source
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
        self._stop = threading.Event()
        self.busy = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                item = next(self._source, _END)
                self.busy += time.perf_counter() - t0
                self._put(item)
                if item is _END:
                    return
        except BaseException as exc:  # handed to the caller, which re-raises it
            self._put(exc)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Prefetch[T]:
        return self

    def __next__(self) -> T:
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # later calls stop too
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the producer (it ends at its next item) and wait for it."""
        _stop_thread(self._stop, self._queue, self._thread, wake=False)

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sink(Generic[T]):
    """Call ``fn`` on each item :meth:`put` here, in order, in a background thread.

    Used as a context manager: a clean exit waits for the last item (and raises what ``fn``
    raised); an exit by exception abandons what is queued.
    """

    def __init__(self, fn: Callable[[T], None], maxsize: int) -> None:
        self._fn = fn
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self.busy = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END or self._stop.is_set():
                return
            t0 = time.perf_counter()
            try:
                self._fn(item)
            except BaseException as exc:
                self.error = exc
                self._stop.set()
                return
            finally:
                self.busy += time.perf_counter() - t0

    def put(self, item: T) -> None:
        """Queue ``item``; raises what the consumer raised, as soon as it has failed."""
        while True:
            if self.error is not None:
                raise self.error
            if self._stop.is_set():
                raise RuntimeError("the sink was closed")
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Wait until every queued item is consumed; raise what the consumer raised."""
        while self._thread.is_alive():
            try:
                self._queue.put(_END, timeout=_POLL_S)
                break
            except queue.Full:
                continue
        self._thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """Drop what is queued and stop the consumer after its current item."""
        _stop_thread(self._stop, self._queue, self._thread, wake=True)

    def __enter__(self) -> Sink[T]:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
