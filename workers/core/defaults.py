"""Default values of job options, written once: the wire specs state them, the core's requests default to them.

The specs in :mod:`workers.kinds` declare these as their fields' defaults (with the limits, which only the specs
state); the core's request dataclasses use the same constants, so a request built without an option computes
what the API documents. This module imports no torch: the API reads it through the specs.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "IG_AUTO_STEP_RULE",
    "IG_BASELINE",
    "IG_MAX_RELATIVE_ERROR",
    "IG_MAX_STEPS",
    "IG_N_STEPS",
    "IG_STEP_RULE",
    "LENS_TOP_K",
    "LOGIT_EFFECTS_TOP_N",
    "PATH_DIRECTION",
    "SAE_EXCLUDE_BOS",
    "SAE_INCLUDE_LOSS",
    "SAE_TOP_K",
    "STEER_COEFFICIENT",
    "STEER_MAX_NEW_TOKENS",
    "STEER_SEED",
    "STEER_TEMPERATURE",
    "SWEEP_DIRECTION",
    "TARGET_KIND",
]

# attribution
TARGET_KIND: Final = "logit"
"""Attribute the target's logit (not its log-prob)."""
IG_N_STEPS: Final = 50
IG_STEP_RULE: Final = "gausslegendre"
IG_AUTO_STEP_RULE: Final = "riemann_middle"
"""The rule of ``n_steps: "auto"`` when none is given. Tripling its steps reuses every earlier point, it is second
order like the trapezoid, and unlike the trapezoid it never evaluates the endpoints: a zero embedding (α = 0) is a
near-singular point of RMSNorm models, where the trapezoid's completeness error is off by orders of magnitude. On
the tiny test models it converged to 1% in at most 27 steps; Gauss-Legendre, re-evaluated at each doubling, in 24
evaluations (16 points)."""
IG_MAX_RELATIVE_ERROR: Final = 0.01
IG_MAX_STEPS: Final = 1024
IG_BASELINE: Final = "pad"
"""Pad-token embeddings with BOS kept: integrated gradients converge on RMSNorm models, where a zero embedding
is a near-singular point."""
LENS_TOP_K: Final = 10

# patching
SWEEP_DIRECTION: Final = "denoise"
"""Exact and attribution patching: clean activations patched into the corrupted run."""
PATH_DIRECTION: Final = "noise"
"""Path patching: corrupted sender outputs into the clean run, the setting of Wang et al. (2022)."""

# sae_encode
SAE_TOP_K: Final = 10
SAE_INCLUDE_LOSS: Final = False
SAE_EXCLUDE_BOS: Final = True
"""BOS residuals are outliers SAEs are not trained to reconstruct; SAELens's evaluations leave them out too."""

# steer
STEER_COEFFICIENT: Final = 0.0
STEER_MAX_NEW_TOKENS: Final = 20
STEER_TEMPERATURE: Final = 0.0
"""0 is greedy decoding."""
STEER_SEED: Final = 0

# SAE feature queries
LOGIT_EFFECTS_TOP_N: Final = 10
