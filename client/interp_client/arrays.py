"""Results as numpy arrays (the ``numpy`` extra): a grid's values in its axis order, NaN where undefined."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import numpy as np
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("to_numpy needs numpy: pip install 'interp-client[numpy]'") from exc

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from interp_client.models import AttributionResult, PatchingResult, SaeFeaturesResult

__all__ = ["attribution_arrays", "feature_arrays", "patching_arrays", "read_safetensors", "to_array"]


def to_array(values: list[Any]) -> NDArray[np.float64]:
    """Nested lists of numbers, ``None`` for undefined, as a float array with NaN there."""
    return np.array(values, dtype=np.float64)


def patching_arrays(result: PatchingResult, *, raw: bool = False) -> dict[str, NDArray[np.float64]]:
    """Each target's grid (``raw``: the patched metric itself rather than the normalised effect)."""
    return {name: to_array(grid.raw_values if raw else grid.values) for name, grid in result.targets.items()}


def attribution_arrays(result: AttributionResult) -> dict[str, NDArray[np.float64]]:
    """``scores`` (one per token) when the method gives them, and every grid by its name."""
    arrays = {"scores": to_array(result.scores)} if result.scores is not None else {}
    arrays.update((name, to_array(grid.values)) for name, grid in (result.grids or {}).items())
    return arrays


def feature_arrays(result: SaeFeaturesResult) -> list[NDArray[np.float64]]:
    """The feature's activation at each token, one array per prompt."""
    return [to_array(prompt.activations) for prompt in result.prompts]


def read_safetensors(data: bytes) -> dict[str, NDArray[Any]]:
    """A result's file (``Client.artifact``) as arrays by tensor name: ``"{prompt}/{hook}"`` and, with ``top_k``,
    ``"{prompt}/{hook}.indices"``; each hook's ``tensor`` field names its own."""
    from safetensors.numpy import load

    return load(data)
