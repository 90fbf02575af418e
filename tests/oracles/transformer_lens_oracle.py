"""Build a TransformerLens HookedTransformer from an in-memory HF model, offline.

TransformerLens's ``from_pretrained`` reaches for the hub for models without an official name; its lower-level
loaders accept a local config directory. Weight processing (LayerNorm folding, centring) is switched off so that
activations equal the HF model's own.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from transformer_lens import HookedTransformer, HookedTransformerConfig, loading
from transformers import PreTrainedModel

NO_PROCESSING = {
    "fold_ln": False,
    "center_writing_weights": False,
    "center_unembed": False,
    "fold_value_biases": False,
    "refactor_factored_attn_matrices": False,
}


def hooked_transformer_from_hf(model: PreTrainedModel) -> HookedTransformer:
    """A HookedTransformer with ``model``'s weights and no weight processing."""
    with tempfile.TemporaryDirectory() as directory:
        # A neutral directory name: TransformerLens infers some architectures from the name.
        path = Path(directory) / "model"
        config = model.config
        config.architectures = [type(model).__name__]
        config.save_pretrained(path)
        cfg_dict = loading.convert_hf_model_config(str(path))
        cfg_dict["dtype"] = model.dtype
        cfg_dict["device"] = "cpu"
        cfg_dict["tokenizer_name"] = None
        cfg = HookedTransformerConfig(**cfg_dict)
        state_dict = loading.get_pretrained_state_dict(str(path), cfg, model)
    hooked = HookedTransformer(cfg, move_to_device=False)
    hooked.load_and_process_state_dict(state_dict, **NO_PROCESSING)
    return hooked.eval()
