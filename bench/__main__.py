"""`python -m bench NAME [args]` runs `bench/bench_NAME.py` (or a script of :data:`SCRIPTS`); with no name, lists
them."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

SCRIPTS = {"load": "bench.load"}
"""Runnable by name without the ``bench_`` prefix: not a benchmark against a reference."""


def main() -> None:
    names = sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(Path(__file__).parent)]))
    names = [n for n in names if not n.startswith("_") and n != "timing"]
    if len(sys.argv) < 2 or sys.argv[1] not in names:
        print("usage: python -m bench NAME [args]; benchmarks:", ", ".join(names))
        raise SystemExit(2)
    module = importlib.import_module(SCRIPTS.get(sys.argv[1], f"bench.bench_{sys.argv[1]}"))
    sys.argv = [f"bench_{sys.argv[1]}", *sys.argv[2:]]
    module.main()


if __name__ == "__main__":
    main()
