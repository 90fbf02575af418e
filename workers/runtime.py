"""The objects one worker process holds: registry, model pool, job store, activation cache, SAE store.

Built once per process from :class:`WorkerSettings` (lazily, so a prefork child builds its own after the fork and
no torch work happens in the parent). In embedded mode the API passes its in-memory store and cache in.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from workers.activation_cache import ActivationCache
from workers.cards import ModelCard, card_key, pack_tokenizer, tokenizer_key
from workers.core.hooked_model import HookedModel
from workers.core.loading import load_model
from workers.core.model_pool import ModelPool
from workers.core.registry import ModelEntry, Registry
from workers.core.sae.autoencoder import Sae
from workers.core.sae.loading import SaeStore, sae_width
from workers.core.shared_forwards import SharedForwards
from workers.kinds.view import ModelView
from workers.metrics import MODEL_LOAD, MODELS_LOADED, register_gpu_collector, sample_gpu_memory
from workers.records import JobStore
from workers.settings import WorkerSettings, load_registry
from workers.stores import build_stores

__all__ = ["WorkerRuntime"]

log = logging.getLogger(__name__)


def _wrap(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, entry: ModelEntry) -> HookedModel:
    return HookedModel(model, tokenizer, model_id=entry.id, max_tokens=entry.max_tokens)


def _timed_load(
    entry: ModelEntry, *, cache_dir: Path, allow_downloads: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The pool's loader, timed: ``interp_model_load_seconds`` and a log line per model loaded."""
    started = time.perf_counter()
    loaded = load_model(entry, cache_dir=cache_dir, allow_downloads=allow_downloads)
    seconds = time.perf_counter() - started
    MODEL_LOAD.labels(model=entry.id).observe(seconds)
    log.info("model loaded", extra={"model": entry.id, "seconds": round(seconds, 3)})
    sample_gpu_memory()
    return loaded


CARD_CHECK_S = 5.0
"""How often a worker checks that the store still has its models' cards."""


class WorkerRuntime:
    """Per-process worker state; :meth:`model` loads through the LRU pool and publishes the model's card."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        store: JobStore | None = None,
        cache: ActivationCache | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.settings = settings
        torch.set_num_threads(settings.threads_per_job())  # per process: each prefork child builds its own runtime
        self.registry = registry or load_registry(settings)
        if store is None or cache is None:
            built_store, built_cache = build_stores(settings)
            store, cache = store or built_store, cache or built_cache
        self.store: JobStore = store
        self.cache: ActivationCache = cache
        self.pool: ModelPool[HookedModel] = ModelPool(
            self.registry, settings.model_cache_dir, settings.pool_max_bytes, _wrap, loader=_timed_load
        )
        self.saes = SaeStore(settings.sae_pool_max_bytes)
        self._cards: dict[str, ModelCard] = {}
        self._lock = threading.Lock()
        self._forwards: dict[str, SharedForwards] = {}
        self.exclusive = threading.Lock()
        """Held by a job whose forwards are its own (patching, steering, …): one such job runs at a time, as the
        memory checks assume; jobs that share forwards run beside it."""
        register_gpu_collector()  # a process that runs jobs reports its GPU memory (never the API's own)

    def model(self, model_id: str) -> HookedModel:
        hooked = self.pool.get(model_id)
        MODELS_LOADED.set(len(self.pool.loaded_ids))  # loads and evictions happen inside get
        if model_id not in self._cards:
            self.publish_card(hooked)
        return hooked

    def shared_forwards(self, hooked: HookedModel) -> SharedForwards:
        """The combiner of ``hooked``'s forwards, one per loaded model (a reloaded model gets a new one)."""
        with self._lock:
            forwards = self._forwards.get(hooked.model_id)
            if forwards is None or forwards.model is not hooked:
                wait_ms = self.settings.batch_max_wait_ms if self.settings.shares_forwards else 0.0
                forwards = SharedForwards(hooked, max_wait_s=wait_ms / 1000,
                                          max_tokens=self.settings.batch_max_tokens)
                self._forwards[hooked.model_id] = forwards
            return forwards

    def view(self, model_id: str) -> ModelView:
        """What the submission checks see of a loaded model: the card it published and the same tokenizer."""
        hooked = self.model(model_id)
        return ModelView(self._cards[model_id], hooked.tokenizer.backend_tokenizer, self.registry.get(model_id))

    def publish_card(self, hooked: HookedModel) -> ModelCard:
        """Write the model's card and tokenizer where the API reads them."""
        entry = self.registry.get(hooked.model_id)
        tokenizer_json: str = hooked.tokenizer.backend_tokenizer.to_str()
        facts = hooked.facts
        bos = hooked.tokenizer.bos_token_id
        card = ModelCard(
            model=hooked.model_id,
            family=facts.family,
            architecture=facts.architecture,
            n_layers=facts.n_layers,
            d_model=facts.d_model,
            n_heads=facts.n_heads,
            n_kv_heads=facts.n_kv_heads,
            d_head=facts.d_head,
            d_mlp=facts.d_mlp,
            d_vocab=facts.d_vocab,
            n_ctx=facts.n_ctx,
            max_tokens=hooked.max_tokens,
            dtype=entry.dtype,
            bos_token_id=bos if isinstance(bos, int) else None,
            hook_names=hooked.hook_names,
            tokenizer_sha256=hashlib.sha256(tokenizer_json.encode()).hexdigest(),
            sae_widths=self._sae_widths(entry),
        )
        self.store.set_meta(tokenizer_key(hooked.model_id), pack_tokenizer(tokenizer_json))
        self.store.set_meta(card_key(hooked.model_id), card.model_dump_json().encode())
        with self._lock:
            self._cards[hooked.model_id] = card
        return card

    def warm(self, model_ids: Iterable[str], *, background: bool = True) -> None:
        """Load models ahead of their first job so their cards (and so the API's submission checks) exist early.

        In the background for a worker process, which then keeps the cards in the store (:meth:`keep_cards`); in
        the foreground where the API must not listen before it can check what it accepts (embedded mode).
        """

        def load_all() -> None:
            for model_id in model_ids:
                try:
                    self.model(model_id)
                except Exception:  # a model that cannot load fails its jobs with the reason; warming goes on
                    log.exception("warming model %s failed", model_id)

        def load_and_keep() -> None:
            load_all()
            self.keep_cards()

        if background:
            threading.Thread(target=load_and_keep, name="interp-warm", daemon=True).start()
        else:
            load_all()

    def keep_cards(self, every_s: float = CARD_CHECK_S, stop: threading.Event | None = None) -> None:
        """Publish a loaded model's card again whenever the store has lost it (a Redis restarted without
        persistence), so the API's checks and ``/v1/tokenize`` come back without restarting the worker."""
        stop = stop or threading.Event()
        while not stop.wait(every_s):
            for model_id in self.pool.loaded_ids:  # a model evicted since is published again when next loaded
                try:
                    if self.store.get_meta(card_key(model_id)) is None:
                        self.publish_card(self.pool.get(model_id))
                        log.warning("published the card of %s again: the store had lost it", model_id)
                except Exception:  # the store is away: try again at the next check
                    log.debug("could not check the card of %s", model_id, exc_info=True)

    def sae(self, model: HookedModel, sae_id: str) -> Sae:
        """The SAE ``sae_id`` of ``model``, through the process's byte-bounded LRU of SAEs."""
        return self.saes.get(
            self.registry.get(model.model_id),
            sae_id,
            model_facts=model.facts,
            allow_downloads=self.registry.allow_downloads,
            cache_dir=self.settings.model_cache_dir,
        )

    def _sae_widths(self, entry: ModelEntry) -> dict[str, int]:
        """``d_sae`` of each of the model's SAEs whose ``cfg.json`` can be read (no weights are loaded)."""
        allow, cache_dir = self.registry.allow_downloads, self.settings.model_cache_dir
        widths = {sae.id: sae_width(sae, allow_downloads=allow, cache_dir=cache_dir) for sae in entry.saes}
        return {sae_id: width for sae_id, width in widths.items() if width is not None}
