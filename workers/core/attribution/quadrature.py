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
