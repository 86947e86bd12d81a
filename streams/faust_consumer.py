"""A Faust app whose consumer hands fetched messages to the agents without a task per message.

Faust's fetch loop (``Consumer._drain_messages``) delivers each message through ``wait_first``,
which wraps the delivery and three events in four tasks so that a rebalance can interrupt a
delivery blocked on a full stream queue. With one event per message that costs about as much as
everything agentload does with the event (see BENCHMARKS.md). :class:`LeanConsumer` awaits the
delivery directly instead. A rebalance stays safe because the loop watches the consumer
generation. Once it changes, the rest of the fetched records are dropped without moving their
read offsets, so the records fetched again from the committed offsets are not taken for repeats.

This replaces a private method of faust-streaming 0.15; the pin in pyproject.toml keeps it to that
series, and the worker's restart and rebalance tests cover it.
"""

from __future__ import annotations

import asyncio

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver


class LeanConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer with a fetch loop that awaits each delivery directly."""

    async def _drain_messages(self, fetcher) -> None:
        app = self.app
        deliver = self.callback
        read_offset = self._read_offset
        suspended = self.suspend_flow.is_set
        acks_enabled_for = app.topics.acks_enabled_for
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records = self.getmany(timeout=1.0)
                # getmany can return at once many times in a row; let the other tasks run.
                await asyncio.sleep(0)
                if self.should_stop:
                    continue
                generation = app.consumer_generation_id
                async for tp, message in records:
                    if suspended() or app.consumer_generation_id != generation:
                        # A rebalance began: the new assignment fetches from the committed offsets.
                        continue
                    offset = message.offset
                    last = read_offset[tp]
                    if last is not None and offset < last:
                        continue
                    if last and offset - last > 1 and acks_enabled_for(message.topic):
                        await self._add_gap(tp, last + 1, offset)
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    await deliver(message)
                    if app.consumer_generation_id == generation:
                        read_offset[tp] = offset
        except self.consumer_stopped_errors:
            if app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if app.should_stop:
                return
            raise


class LeanTransport(aiokafka_driver.Transport):
    Consumer = LeanConsumer


class LeanApp(faust.App):
    """A Faust app that consumes through :class:`LeanConsumer`."""

    def _new_transport(self):
        return LeanTransport(self.conf.broker_consumer, self)
