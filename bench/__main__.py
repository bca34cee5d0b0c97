"""`python -m bench NAME [options]`: run one benchmark and print its figures."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "channels": "bench.channels",
    "routing": "bench.routing",
    "serve": "bench.serve",
    "simulate": "bench.simulate",
    "store": "bench.store",
    "voice": "bench.voice",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print(f"usage: python -m bench {{{','.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[argv[0]])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
