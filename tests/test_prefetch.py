"""The background reader and writer helpers: order, errors reaching the caller, no thread left blocked."""

from __future__ import annotations

import threading
import time

import pytest

from pipelines.prefetch import Prefetch, Sink


def test_prefetch_yields_everything_in_order():
    with Prefetch(iter(range(100)), maxsize=3) as items:
        assert list(items) == list(range(100))
        assert list(items) == []  # exhausted stays exhausted


def test_prefetch_hands_the_producers_error_to_the_caller():
    def source():
        yield 1
        yield 2
        raise ValueError("corrupt frame 3")

    got = []
    with pytest.raises(ValueError, match="corrupt frame 3"), Prefetch(source(), maxsize=2) as items:
        got.extend(items)
    assert got == [1, 2]


def test_prefetch_close_stops_a_producer_that_is_ahead():
    produced = []

    def source():
        for i in range(10_000):
            produced.append(i)
            yield i

    items = Prefetch(source(), maxsize=2)
    assert next(items) == 0
    time.sleep(0.05)
    items.close()
    assert not items._thread.is_alive()
    assert len(produced) < 10  # bounded read-ahead: it never ran far ahead of the caller


def test_sink_consumes_in_order_and_waits_on_close():
    seen = []
    with Sink(seen.append, maxsize=2) as sink:
        for i in range(50):
            sink.put(i)
    assert seen == list(range(50))


def test_sink_error_reaches_the_next_put():
    def consume(item: int) -> None:
        if item == 3:
            raise OSError("disk full")

    sink = Sink(consume, maxsize=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(1000):
            sink.put(i)
    with pytest.raises(OSError, match="disk full"):
        sink.close()


def test_sink_abort_does_not_wait_for_the_queue():
    release, started = threading.Event(), threading.Event()
    done = []

    def slow(item: int) -> None:
        started.set()
        release.wait(5)
        done.append(item)

    sink = Sink(slow, maxsize=4)
    for i in range(4):
        sink.put(i)
    assert started.wait(5)
    threading.Timer(0.3, release.set).start()  # the consumer is held in item 0 while abort drains
    sink.abort()
    assert not sink._thread.is_alive()
    assert done == [0]  # the item in hand finishes; what was still queued is dropped
