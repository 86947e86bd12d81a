"""Event contracts, the per-agent load engine, runtimes, sources and platform adapters."""
