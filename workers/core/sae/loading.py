"""Load the SAEs a registry lists for a model: a local SAELens directory, or a hub repo pinned to a revision.

Every SAE is checked against the model it is served for before it is returned: its hook must exist in the model
and read exactly ``d_in`` values per token. Hub SAEs are read from the local hub cache unless the registry allows
downloads. A worker keeps loaded SAEs in a :class:`SaeStore` bounded by bytes; a failed load raises and leaves
nothing behind there. :func:`sae_width` reads only an SAE's ``cfg.json``, so a worker can publish every SAE's
width on its model card without loading weights.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from workers.core.errors import SaeFormatError, ShapeMismatchError, UnknownHookError
from workers.core.hooked_model import ModelFacts
from workers.core.hooks import HookName, parse_hook_name
from workers.core.lru import BytesLru
from workers.core.registry import ModelEntry, SaeEntry
from workers.core.sae.autoencoder import Sae
from workers.core.sae.formats import SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME, SPARSITY_FILENAME, read_sae_dir

__all__ = ["SaeStore", "hook_width", "load_registered_sae", "load_sae", "sae_bytes", "sae_width"]

_SAE_FILES = (SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME, SPARSITY_FILENAME)


def hook_width(facts: ModelFacts, hook: HookName, *, family: str | None = None) -> int:
    """Values per token an SAE reads at ``hook`` (heads flattened for ``hook_z``); refuses hooks the model lacks."""
    if hook.layer is not None and not 0 <= hook.layer < facts.n_layers:
        raise UnknownHookError(
            f"{hook}: layer {hook.layer} is out of range; the model has layers 0..{facts.n_layers - 1}", field="sae"
        )
    site = hook.site
    if site == "hook_pos_embed" and (family or facts.family) != "gpt2":
        raise UnknownHookError(f"{facts.family} models have no hook_pos_embed", field="sae")
    if site in ("attn.hook_q", "attn.hook_z"):
        return facts.n_heads * facts.d_head
    if site in ("attn.hook_k", "attn.hook_v"):
        return facts.n_kv_heads * facts.d_head
    if site == "mlp.hook_post":
        return facts.d_mlp
    if site in ("attn.hook_pattern", "ln_final.hook_scale"):
        raise UnknownHookError(f"an SAE cannot read {site}", field="sae")
    return facts.d_model


def _local_dir(
    entry: SaeEntry, allow_downloads: bool, cache_dir: Path | None, files: Sequence[str] = _SAE_FILES
) -> Path:
    """The SAE's directory on disk, with ``files`` fetched into the hub cache first for a hub SAE."""
    if entry.path is not None:
        return entry.path
    if entry.repo is None or entry.revision is None:
        raise SaeFormatError(f"SAE {entry.id!r} has neither a path nor a pinned repo revision", field="sae")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    prefix = f"{entry.subfolder.strip('/')}/" if entry.subfolder else ""
    patterns = [prefix + name for name in files]
    try:
        root = snapshot_download(
            entry.repo,
            revision=entry.revision,
            allow_patterns=patterns,
            local_files_only=not allow_downloads,
            cache_dir=None if cache_dir is None else str(cache_dir),
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        where = "download failed" if allow_downloads else "not in the local hub cache and downloads are off"
        raise SaeFormatError(f"SAE {entry.id!r} ({entry.repo}@{entry.revision}): {where}", field="sae") from exc
    return Path(root) / prefix


def load_sae(
    entry: SaeEntry,
    *,
    model_facts: ModelFacts,
    allow_downloads: bool = False,
    cache_dir: Path | None = None,
) -> Sae:
    """Read an SAE and check it fits the model: its hook exists and is ``d_in`` wide; the registry's hook matches."""
    cfg, tensors, sparsity = read_sae_dir(_local_dir(entry, allow_downloads, cache_dir))
    hook = parse_hook_name(cfg.hook_name, field="sae")
    if hook != parse_hook_name(entry.hook, field="sae"):
        raise SaeFormatError(
            f"SAE {entry.id!r} is listed at {entry.hook} but its cfg.json reads {cfg.hook_name}", field="sae"
        )
    width = hook_width(model_facts, hook)
    if cfg.d_in != width:
        raise ShapeMismatchError(
            f"SAE {entry.id!r} has d_in {cfg.d_in} but {hook} carries {width} values per token", field="sae"
        )
    return Sae(id=entry.id, cfg=cfg, tensors=tensors, sparsity=sparsity)


def load_registered_sae(
    model: ModelEntry,
    sae_id: str,
    *,
    model_facts: ModelFacts,
    allow_downloads: bool = False,
    cache_dir: Path | None = None,
) -> Sae:
    """The SAE ``sae_id`` of a registry model; an unknown id lists the ids that model serves."""
    entry = model.get_sae(sae_id)
    return load_sae(entry, model_facts=model_facts, allow_downloads=allow_downloads, cache_dir=cache_dir)


def sae_width(entry: SaeEntry, *, allow_downloads: bool = False, cache_dir: Path | None = None) -> int | None:
    """The SAE's ``d_sae`` from its ``cfg.json`` alone (no weights read), or ``None`` when that file cannot be
    had: the SAE's own load then reports why."""
    try:
        cfg_path = _local_dir(entry, allow_downloads, cache_dir, files=(SAE_CFG_FILENAME,)) / SAE_CFG_FILENAME
        d_sae = json.loads(cfg_path.read_text(encoding="utf-8")).get("d_sae")
    except (SaeFormatError, OSError, ValueError, AttributeError):
        return None
    return d_sae if isinstance(d_sae, int) and not isinstance(d_sae, bool) and d_sae > 0 else None


def sae_bytes(sae: Sae) -> int:
    """Bytes of an SAE's tensors (sparsity included): what it weighs in a :class:`SaeStore`."""
    tensors = [*sae.tensors.values(), *([] if sae.sparsity is None else [sae.sparsity])]
    return sum(t.numel() * t.element_size() for t in tensors)


class SaeStore:
    """Loaded SAEs by (model id, SAE id), least recently used evicted when their total bytes pass ``max_bytes``.

    The same :class:`~workers.core.lru.BytesLru` as the model pool: concurrent requests share one load, and only
    successful loads are kept.
    """

    def __init__(self, max_bytes: int) -> None:
        self._lru: BytesLru[tuple[str, str], Sae] = BytesLru(max_bytes)

    @property
    def loaded(self) -> tuple[tuple[str, str], ...]:
        """(model id, SAE id) in memory, least recently used first."""
        return self._lru.keys

    @property
    def loaded_bytes(self) -> int:
        return self._lru.loaded_bytes

    def get(
        self,
        model: ModelEntry,
        sae_id: str,
        *,
        model_facts: ModelFacts,
        allow_downloads: bool = False,
        cache_dir: Path | None = None,
    ) -> Sae:
        """The SAE ``sae_id`` of ``model``, loaded on a miss; an unknown id lists the served ones, loading nothing."""
        model.get_sae(sae_id)

        def load() -> tuple[Sae, int]:
            sae = load_registered_sae(
                model, sae_id, model_facts=model_facts, allow_downloads=allow_downloads, cache_dir=cache_dir
            )
            return sae, sae_bytes(sae)

        return self._lru.get((model.id, sae_id), load)

    def __len__(self) -> int:
        return len(self._lru)
