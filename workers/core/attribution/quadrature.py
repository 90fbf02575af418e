"""Integration rules of integrated gradients: the points ``alpha`` in [0, 1] and their weights.

Gauss-Legendre and the left, right and middle Riemann sums are Captum's (``approximation_methods.py``). The
trapezoid rule differs on purpose: Captum weights its ``n`` equally spaced points by ``1/n`` (halved at the ends),
so its weights sum to ``(n − 1)/n`` and completeness is off by ``1/n``; here the points are spaced ``1/(n − 1)``
and weighted accordingly, so the weights sum to 1.
"""

from __future__ import annotations

import numpy as np
import torch


def quadrature(rule: str, n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alphas, weights)`` as float64 tensors of length ``n_steps``."""
    n = n_steps
    if rule == "gausslegendre":
        points, weights = np.polynomial.legendre.leggauss(n)
        return torch.from_numpy(0.5 * (1 + points)), torch.from_numpy(0.5 * weights)
    uniform = torch.full((n,), 1.0 / n, dtype=torch.float64)
    if rule == "riemann_left":
        return torch.linspace(0, 1 - 1 / n, n, dtype=torch.float64), uniform
    if rule == "riemann_right":
        return torch.linspace(1 / n, 1, n, dtype=torch.float64), uniform
    if rule == "riemann_middle":
        return torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n, dtype=torch.float64), uniform
    if rule == "riemann_trapezoid":
        weights_t = torch.full((n,), 1.0 / (n - 1), dtype=torch.float64)
        weights_t[0] /= 2
        weights_t[-1] /= 2
        return torch.linspace(0, 1, n, dtype=torch.float64), weights_t
    raise ValueError(f"unknown rule {rule}")


NESTED_RULES: dict[str, int] = {"riemann_left": 2, "riemann_right": 2, "riemann_trapezoid": 2, "riemann_middle": 3}
"""Rules whose points at the next size of :func:`auto_schedule` include every point of the previous size, by the
factor the number of intervals grows: doubling for the left, right and trapezoid sums, tripling for the
midpoint sum. Gauss-Legendre's nodes never nest, so ``"auto"`` re-evaluates every point at each size."""

AUTO_FIRST_STEPS = 8


def auto_schedule(rule: str, max_steps: int) -> list[int]:
    """The step counts ``n_steps: "auto"`` tries in turn, none above ``max_steps`` (at least one: ``max_steps``
    itself when the first size is larger)."""
    factor = NESTED_RULES.get(rule, 2)
    if rule == "riemann_trapezoid":
        sizes, intervals = [], AUTO_FIRST_STEPS
        while intervals + 1 <= max_steps:
            sizes.append(intervals + 1)
            intervals *= factor
    else:
        sizes, n = [], 9 if rule == "riemann_middle" else AUTO_FIRST_STEPS
        while n <= max_steps:
            sizes.append(n)
            n *= factor
    return sizes or [max_steps]


def new_points(alphas: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """A mask of the ``alphas`` not already among ``previous`` (to float64 rounding)."""
    if previous.numel() == 0:
        return torch.ones_like(alphas, dtype=torch.bool)
    return ~(alphas[:, None] - previous[None, :]).abs().lt(1e-12).any(1)
