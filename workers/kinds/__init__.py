"""One module per job kind turning a validated spec into a core request and the core result into JSON.

This package's ``__init__`` imports no torch: the API asks :func:`kind_available` whether a kind's core is
installed, and only workers call :func:`runner_for`, which imports the kind's module.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from workers.core.errors import CoreError

__all__ = ["CORE_MODULES", "KindUnavailableError", "Runner", "kind_available", "runner_for"]

CORE_MODULES: dict[str, str] = {
    "attribution": "workers.core.attribution",
    "patching": "workers.core.patching",
    "sae_encode": "workers.core.sae",
    "steer": "workers.core.steering",
}
"""The core module each kind needs; a kind whose module is absent is refused with ``kind_unavailable``."""

Runner = Callable[..., dict[str, Any]]


class KindUnavailableError(CoreError):
    """This deployment has no compute core for the job kind."""

    code = "kind_unavailable"
    status = 400


def kind_available(kind: str) -> bool:
    """Whether the kind's core module is installed, found without importing it (and so without torch)."""
    module = CORE_MODULES.get(kind)
    if module is None:
        return False
    try:
        core = importlib.util.find_spec(module)
        runner = importlib.util.find_spec(f"workers.kinds.{kind}")
    except ModuleNotFoundError:
        return False
    # A directory without __init__.py is a namespace package (origin None): a core still being written.
    return core is not None and core.origin is not None and runner is not None


def runner_for(kind: str) -> Runner:
    """``run(ctx, spec) -> result dict`` for ``kind``; :class:`KindUnavailableError` when its core is missing."""
    if not kind_available(kind):
        raise KindUnavailableError(f"job kind {kind!r} is not available on this deployment", field="kind")
    module = importlib.import_module(f"workers.kinds.{kind}")
    run: Runner = module.run
    return run
