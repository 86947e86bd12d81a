"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

# Imported so that every test can take these fixtures; they live beside the Kafka helpers.
from tests.kafka_support import kafka_bootstrap, kafka_topic_prefix  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parent.parent
# The real public data sets live beside the repository, not in it; a user's clone may lack them.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """Return the folder of real public data sets, or skip the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA
