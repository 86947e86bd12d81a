"""The Faust app class of the worker: cheaper delivery of fetched messages, buffers bounded in bytes.

Two things keep a stock Faust worker well below what its own CPU allows when every message contains
one event (see BENCHMARKS.md):

- **Four tasks per message.** Faust's fetch loop (``Consumer._drain_messages``) hands each message
  to the streams with ``wait_first(callback(message), suspend_flow.wait())``. That wraps the
  delivery, the suspend event and the service's stopped and crashed events in four tasks, waits for
  the first to finish and cancels the rest. It is there so that a rebalance can interrupt a
  delivery blocked on a full stream buffer. :class:`EagerConsumer` runs the delivery at once
  instead, up to its first suspension, the way Python 3.12's eager tasks start. A delivery into a
  buffer with room finishes there, with the result Faust's ``wait_first`` gives when the delivery
  wins. A delivery that has to wait goes on inside Faust's ``wait_first`` from where it stopped,
  so a rebalance can still interrupt it. The fetch loop, its read offsets and its checks of the
  flow stay Faust's own: running the delivery first is one of the orders in which Faust's tasks
  may already run.
- **A stream buffer smaller than one fetch.** Faust stops fetching a partition once its stream
  buffer contains ``stream_buffer_maxsize / 1.25`` messages (4096 by default). With one event per
  message a single fetch brings more than that. With one broker, the client fetches again only
  once every partition's records are handed over, so the worker sat idle for up to a second at a
  time. :class:`WorkerApp` raises the count. A count bounds nothing when messages are big
  (agentload's packed messages contain up to 200 events), so it also stops fetching while its
  stream buffers hold more than ``buffer_max_bytes`` of message values. The check comes before a fetch,
  so the buffers can exceed the budget by one fetch (up to 4 MiB per partition in the worker).

The budget is shared: while the buffers are over it, no partition of any topic is fetched, where
Faust pauses only the partition whose buffer is full. NOTE: an agent of this app that waits for
input read through the same consumer, such as ``agent.ask`` replies, could wait for good. The
worker's agents wait only on the producer and the group coordinator.

Written for faust-streaming 0.15 (the pin in pyproject.toml); the worker's restart and rebalance
tests run on it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Coroutine, Generator
from typing import Any

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from mode.services import WaitResults
from mode.utils.queues import ThrowableQueue

# Stream buffers: at most this many messages, and no new fetch while they hold more than
# BUFFER_MAX_BYTES of message values.
BUFFER_MAX_MESSAGES = 65_536
BUFFER_MAX_BYTES = 32 * 1_048_576
# How often a fetch held back by full buffers looks again.
BUFFER_POLL_S = 0.01


class _Resumed:
    """An awaitable that continues ``coroutine``, already run up to its first suspension.

    ``waiting_on`` is what the coroutine yielded there, the future it waits for. The task that
    awaits this object waits for that future in the coroutine's place.
    """

    __slots__ = ("_coroutine", "_waiting_on")

    def __init__(self, coroutine: Coroutine, waiting_on: Any):
        self._coroutine = coroutine
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine = self._coroutine
        waiting_on = self._waiting_on
        while True:
            try:
                sent = yield waiting_on
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # Cancellation and any other thrown error go to the coroutine.
                try:
                    waiting_on = coroutine.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    waiting_on = coroutine.send(sent)
                except StopIteration as stop:
                    return stop.value


def _close(coros: tuple) -> None:
    """Close the coroutines given to ``wait_first`` that never ran, as Faust cancels their tasks."""
    for coro in coros:
        if asyncio.iscoroutine(coro):
            coro.close()


class EagerConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer, with ``wait_first`` running its first coroutine at once."""

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        first = coros[0] if coros else None
        if not asyncio.iscoroutine(first) or self._stopped.is_set() or self._crashed.is_set():
            return await super().wait_first(*coros, timeout=timeout)
        try:
            waiting_on = first.send(None)
        except StopIteration as finished:
            _close(coros[1:])
            return WaitResults([first], [finished.value], False)
        except BaseException:
            _close(coros[1:])
            raise
        resumed = _Resumed(first, waiting_on)
        results = await super().wait_first(resumed, *coros[1:], timeout=timeout)
        done = [first if winner is resumed else winner for winner in results.done]
        return WaitResults(done, results.results, results.stopped)

    async def _wait_next_records(self, timeout: float):
        app = self.app
        while app.buffered_bytes() > app.buffer_max_bytes and self.flow_active and not self.should_stop:
            await asyncio.sleep(BUFFER_POLL_S)
        return await super()._wait_next_records(timeout)


class MeteredQueue(ThrowableQueue):
    """Faust's stream buffer, counting the bytes of the message values it holds."""

    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)
        self.value_bytes = 0

    def _put(self, item: Any) -> None:
        super()._put(item)
        self.value_bytes += _value_size(item)

    def _get(self) -> Any:
        item = super()._get()
        self.value_bytes -= _value_size(item)
        return item

    def clear(self) -> None:
        super().clear()
        self.value_bytes = 0


def _value_size(item: Any) -> int:
    message = getattr(item, "message", None)
    # aiokafka gives a message without a value (a tombstone) the size -1.
    return max(0, getattr(message, "serialized_value_size", 0) or 0)


class _Transport(aiokafka_driver.Transport):
    Consumer = EagerConsumer


class WorkerApp(faust.App):
    """A Faust app on :class:`EagerConsumer` whose stream buffers are :class:`MeteredQueue`."""

    buffer_max_bytes = BUFFER_MAX_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._metered_queues: weakref.WeakSet[MeteredQueue] = weakref.WeakSet()
        kwargs.setdefault("stream_buffer_maxsize", BUFFER_MAX_MESSAGES)
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)

    def FlowControlQueue(self, maxsize: int | None = None, *, clear_on_resume: bool = False) -> MeteredQueue:
        queue = MeteredQueue(maxsize=maxsize, flow_control=self.flow_control, clear_on_resume=clear_on_resume)
        self._metered_queues.add(queue)
        return queue

    def buffered_bytes(self) -> int:
        """Return the bytes of message values waiting in the stream buffers."""
        return sum(queue.value_bytes for queue in self._metered_queues)
