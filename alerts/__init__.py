"""The recovery-break policy, its lifecycle and the sinks that deliver break events."""
