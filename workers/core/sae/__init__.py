"""Sparse autoencoders: SAELens-format loading, encoding with reconstruction quality, and feature queries."""

from workers.core.sae.autoencoder import Norm, Sae
from workers.core.sae.encode import (
    FeatureActivation,
    LossRecovered,
    PromptEncoding,
    Reconstruction,
    SaeEncodeRequest,
    SaeEncodeResult,
    encode_activations,
    encode_sae,
)
from workers.core.sae.features import (
    FeatureActivationsRequest,
    FeatureActivationsResult,
    FeatureLogitEffectsRequest,
    FeatureLogitEffectsResult,
    TokenEffect,
    feature_activations,
    feature_logit_effects,
)
from workers.core.sae.formats import (
    SAE_ARCHITECTURES,
    GatedSaeConfig,
    JumpReluSaeConfig,
    SaeConfig,
    StandardSaeConfig,
    TopKSaeConfig,
    read_sae_dir,
    write_sae_dir,
)
from workers.core.sae.loading import SaeStore, load_registered_sae, load_sae

__all__ = [
    "SAE_ARCHITECTURES",
    "FeatureActivation",
    "FeatureActivationsRequest",
    "FeatureActivationsResult",
    "FeatureLogitEffectsRequest",
    "FeatureLogitEffectsResult",
    "GatedSaeConfig",
    "JumpReluSaeConfig",
    "LossRecovered",
    "Norm",
    "PromptEncoding",
    "Reconstruction",
    "Sae",
    "SaeConfig",
    "SaeEncodeRequest",
    "SaeEncodeResult",
    "SaeStore",
    "StandardSaeConfig",
    "TokenEffect",
    "TopKSaeConfig",
    "encode_activations",
    "encode_sae",
    "feature_activations",
    "feature_logit_effects",
    "load_registered_sae",
    "load_sae",
    "read_sae_dir",
    "write_sae_dir",
]
