"""The worker's Faust consumer: deliveries run at once, and full stream buffers hold back fetching.

These tests drive the consumer of an app that is never started, so they need no broker. The worker
tests (test_faust_restart.py, test_faust_rebalance.py and the rest) run it against a real one.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from types import SimpleNamespace

import pytest
from faust.transport.drivers import aiokafka as aiokafka_driver

from streams.faust_consumer import EagerConsumer, MeteredQueue, WorkerApp


def new_app() -> WorkerApp:
    # Port 9 (discard) on loopback. Nothing here connects, because the app is never started.
    return WorkerApp(
        "test-faust-consumer", broker="kafka://127.0.0.1:9", store="memory://", autodiscover=False
    )


def event_of(size: int) -> SimpleNamespace:
    """A stand-in for a Faust event: the queue reads only ``message.serialized_value_size``."""
    return SimpleNamespace(message=SimpleNamespace(serialized_value_size=size))


def run(coroutine):
    return asyncio.run(coroutine)


def test_worker_app_uses_eager_consumer():
    app = new_app()
    assert isinstance(app.consumer, EagerConsumer)
    assert app.conf.stream_buffer_maxsize > 4096


def test_eager_delivery_runs_in_caller_task():
    async def scenario():
        consumer = new_app().consumer
        caller = asyncio.current_task()
        ran_in = []

        async def deliver():
            ran_in.append(asyncio.current_task())
            return "delivered"

        delivery = deliver()
        suspended = asyncio.Event()
        results = await consumer.wait_first(delivery, suspended.wait())
        return caller, ran_in, delivery, results

    with warnings.catch_warnings():
        # The suspend event's wait() never runs, so it must be closed rather than left unawaited.
        warnings.simplefilter("error", RuntimeWarning)
        caller, ran_in, delivery, results = run(scenario())
        gc.collect()
    assert ran_in == [caller]
    assert results.done == [delivery]
    assert results.results == ["delivered"]
    assert not results.stopped


def test_waiting_delivery_resumes_where_it_stopped():
    async def scenario():
        consumer = new_app().consumer
        room = asyncio.Event()
        steps = []

        async def deliver():
            steps.append("started")
            await room.wait()
            steps.append("resumed")
            await asyncio.sleep(0)
            return "delivered"

        asyncio.get_running_loop().call_later(0.02, room.set)
        delivery = deliver()
        results = await consumer.wait_first(delivery, asyncio.Event().wait())
        return steps, delivery, results

    steps, delivery, results = run(scenario())
    assert steps == ["started", "resumed"]
    assert results.done == [delivery]
    assert results.results == ["delivered"]


def test_waiting_delivery_cancelled_on_suspend():
    async def scenario():
        consumer = new_app().consumer
        suspend = asyncio.Event()
        seen = []

        async def deliver():
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        asyncio.get_running_loop().call_later(0.02, suspend.set)
        results = await consumer.wait_first(deliver(), suspend)
        await asyncio.sleep(0)
        return seen, suspend, results

    seen, suspend, results = run(scenario())
    assert results.done == [suspend]
    assert seen == ["cancelled"]


@pytest.mark.parametrize("waits_first", [False, True])
def test_delivery_error_reaches_fetch_loop(waits_first):
    async def scenario():
        consumer = new_app().consumer

        async def deliver():
            if waits_first:
                await asyncio.sleep(0.01)
            raise ValueError("no channel for this partition")

        await consumer.wait_first(deliver(), asyncio.Event().wait())

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="no channel"):
            run(scenario())
        gc.collect()


def test_metered_queue_counts_value_bytes():
    async def scenario():
        app = new_app()
        first = app.FlowControlQueue(maxsize=10)
        second = app.FlowControlQueue(maxsize=10)
        assert isinstance(first, MeteredQueue)
        first.put_nowait(event_of(300))
        first.put_nowait(event_of(200))
        second.put_nowait(event_of(50))
        second.put_nowait(object())  # not an event: counts nothing
        second.put_nowait(event_of(-1))  # aiokafka's size of a missing value
        assert first.value_bytes == 500
        assert second.value_bytes == 50
        assert app.buffered_bytes() == 550
        assert first.get_nowait().message.serialized_value_size == 300
        assert app.buffered_bytes() == 250
        first.clear()
        return app.buffered_bytes()

    assert run(scenario()) == 50


def test_fetch_waits_for_byte_budget(monkeypatch):
    fetches = []

    async def fetch(self, timeout):
        # Replaces Faust's fetch from the broker: this test has no broker.
        fetches.append(timeout)
        return {}, set()

    monkeypatch.setattr(aiokafka_driver.Consumer, "_wait_next_records", fetch)

    async def scenario():
        app = new_app()
        app.buffer_max_bytes = 1000
        consumer = app.consumer
        queue = app.FlowControlQueue(maxsize=100)
        for _ in range(3):
            queue.put_nowait(event_of(400))
        waiting = asyncio.ensure_future(consumer._wait_next_records(1.0))
        await asyncio.sleep(0.1)
        held_back = not waiting.done() and not fetches
        queue.get_nowait()  # 800 bytes left: within the budget
        await asyncio.wait_for(waiting, timeout=5)
        return held_back

    assert run(scenario())
    assert fetches == [1.0]
