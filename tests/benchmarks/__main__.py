"""``make bench``: every benchmark of the project, one after another, each with its own baseline."""

from __future__ import annotations

import importlib
import sys

# Modules run by default; bench_faust needs a broker (KAFKA_BOOTSTRAP_SERVERS) and runs when named.
DEFAULT = ("bench_engine", "bench_audio")


def main(argv: list[str]) -> int:
    names = argv or list(DEFAULT)
    for name in names:
        module = importlib.import_module(f"tests.benchmarks.{name}")
        print(f"== {name} ==", flush=True)
        module.main()
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
