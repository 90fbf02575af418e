"""`python -m bench NAME [args]` runs `bench/bench_NAME.py`; with no name, lists them."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    names = sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(Path(__file__).parent)]))
    names = [n for n in names if not n.startswith("_") and n != "timing"]
    if len(sys.argv) < 2 or sys.argv[1] not in names:
        print("usage: python -m bench NAME [args]; benchmarks:", ", ".join(names))
        raise SystemExit(2)
    module = importlib.import_module(f"bench.bench_{sys.argv[1]}")
    sys.argv = [f"bench_{sys.argv[1]}", *sys.argv[2:]]
    module.main()


if __name__ == "__main__":
    main()
