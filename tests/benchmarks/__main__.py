"""``make bench``: every benchmark of the project, one after another, each with its own baseline."""

from __future__ import annotations

import importlib
import sys

# bench_faust needs a broker in KAFKA_BOOTSTRAP_SERVERS; `make bench` starts one.
DEFAULT = ("bench_engine", "bench_audio", "bench_faust")


def main(argv: list[str]) -> int:
    names = argv or list(DEFAULT)
    for name in names:
        module = importlib.import_module(f"tests.benchmarks.{name}")
        print(f"== {name} ==", flush=True)
        # Each benchmark reads its own options from the command line; run it with its defaults.
        sys.argv = [name]
        module.main()
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
