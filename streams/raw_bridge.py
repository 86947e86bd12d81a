"""Platform adapters inside the Faust worker: a raw platform topic in, canonical call events out.

A center whose Amazon Connect, Twilio or Genesys events already flow into a Kafka topic names that
topic with ``agentload worker --raw-topic PLATFORM=TOPIC``. A Faust agent then reads it and converts
each document with the same adapter as ``agentload ingest``. It sends the canonical events to
``call-events`` packed per partition by team, as ``agentload produce`` sends them, so the engine
agent consumes them like any other input. What an adapter cannot map goes to ``dead-letters`` with
the raw message's topic, partition and offset.
"""

from __future__ import annotations

import json
import logging
import time

from streams.adapters.amazon_connect import AmazonConnectAdapter
from streams.adapters.genesys import GenesysCloudAdapter
from streams.adapters.twilio import TwilioTaskRouterAdapter
from streams.codec import dead_letter_record, dumps
from streams.engine import DeadLetter, Origin

log = logging.getLogger("agentload.raw_bridge")

ADAPTERS = {
    "amazon-connect": AmazonConnectAdapter,
    "twilio": TwilioTaskRouterAdapter,
    "genesys": GenesysCloudAdapter,
}


def parse_raw_topics(items: list[str]) -> dict[str, str]:
    """Parse ``PLATFORM=TOPIC`` options into {topic: platform}; raise ValueError on a bad one."""
    topics: dict[str, str] = {}
    for item in items:
        platform, separator, topic = item.partition("=")
        if not separator or not topic or platform not in ADAPTERS:
            raise ValueError(
                f"--raw-topic {item!r} is invalid; write PLATFORM=TOPIC with PLATFORM one of {', '.join(ADAPTERS)}"
            )
        topics[topic] = platform
    return topics


class RawBridge:
    """Converts raw platform messages to canonical call events, one adapter per platform.

    ``convert(message)`` returns the canonical events and the dead-letter records of one Kafka
    message. Adapter state (each agent's last snapshot) lives in memory. After a restart an adapter
    starts from the next snapshot it reads, as it does for an agent it meets first.
    """

    def __init__(self, platforms: dict[str, str], lateness_s: float):
        self.platform_of = platforms
        self.adapters = {platform: ADAPTERS[platform](lateness_s=lateness_s) for platform in set(platforms.values())}

    def convert(self, topic: str, partition: int, offset: int, key, value: bytes) -> tuple[list[dict], list[dict]]:
        origin = Origin(topic, partition, offset, key, value)
        try:
            document = json.loads(value)
        except (UnicodeDecodeError, ValueError) as exc:
            error = f"raw {self.platform_of[topic]} message is not JSON ({exc}); the platform's stream should carry JSON documents"
            return [], [dead_letter_record(DeadLetter(error, "invalid_json", origin), time.time())]

        adapter = self.adapters[self.platform_of[topic]]
        events, failures = adapter.convert(document)
        dead = [
            dead_letter_record(DeadLetter(error, "invalid_event", Origin(topic, partition, offset, key, _text(original))), time.time())
            for error, original in failures
        ]
        return events, dead

    def flush(self) -> list[dict]:
        """Return the events still waiting in every adapter's ordering buffer."""
        events = []
        for adapter in self.adapters.values():
            flushed, _ = adapter.flush()
            events.extend(flushed)
        return events


def _text(original: object) -> str | bytes:
    if isinstance(original, (str, bytes)):
        return original
    return dumps(original)
