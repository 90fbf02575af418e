"""The API's view of served models: the registry plus the cards and tokenizers workers publish.

The API never loads weights or imports torch: facts and hook names come from a worker's card, token counts from
the published ``tokenizer.json`` run by the ``tokenizers`` library, both as a :class:`ModelView`. Before any
worker has loaded a model its facts are unknown (``ready: false``) and tokenize answers 503 ``model_not_ready``.
"""

from __future__ import annotations

import threading
import time

from tokenizers import Tokenizer

from service.errors import ModelNotReadyError
from service.schemas import ModelInfo, SaeInfo
from workers.cards import ModelCard, card_key, tokenizer_key, unpack_tokenizer
from workers.core.registry import Registry
from workers.kinds.view import ModelView
from workers.records import JobStore

__all__ = ["Catalog"]

_CARD_TTL_S = 5.0


class Catalog:
    def __init__(self, registry: Registry, store: JobStore) -> None:
        self.registry = registry
        self._store = store
        self._tokenizers: dict[str, tuple[str, Tokenizer]] = {}
        self._cards: dict[str, tuple[float, ModelCard]] = {}
        self._lock = threading.Lock()

    def card(self, model_id: str) -> ModelCard | None:
        """The worker-published card, re-read at most every few seconds (a request reads it several times)."""
        now = time.monotonic()
        with self._lock:
            cached = self._cards.get(model_id)
        if cached is not None and now - cached[0] < _CARD_TTL_S:
            return cached[1]
        raw = self._store.get_meta(card_key(model_id))
        card = None if raw is None else ModelCard.model_validate_json(raw)
        if card is not None:
            with self._lock:
                self._cards[model_id] = (now, card)
        return card

    def info(self, model_id: str) -> ModelInfo:
        entry = self.registry.get(model_id)
        card = self.card(model_id)
        facts = {} if card is None else card.model_dump(exclude={"model", "max_tokens", "dtype", "bos_token_id",
                                                                   "tokenizer_sha256"})
        return ModelInfo(
            id=entry.id,
            ready=card is not None,
            max_tokens=card.max_tokens if card is not None else entry.max_tokens,
            max_patches=entry.max_patches,
            max_artifact_bytes=entry.max_artifact_bytes,
            dtype=entry.dtype,
            weights_revision=entry.weights_revision,
            saes=[SaeInfo(id=s.id, hook=s.hook) for s in entry.saes],
            **facts,
        )

    def view(self, model_id: str) -> ModelView | None:
        """The model as the submission checks see it, or ``None`` before any worker has described it."""
        entry = self.registry.get(model_id)
        card = self.card(model_id)
        if card is None:
            return None
        with self._lock:
            cached = self._tokenizers.get(model_id)
        if cached is None or cached[0] != card.tokenizer_sha256:
            raw = self._store.get_meta(tokenizer_key(model_id))
            if raw is None:
                return None
            cached = (card.tokenizer_sha256, Tokenizer.from_str(unpack_tokenizer(raw)))
            with self._lock:
                self._tokenizers[model_id] = cached
        return ModelView(card, cached[1], entry)

    def ready_view(self, model_id: str) -> ModelView:
        """:meth:`view`, or 503 ``model_not_ready`` for routes that cannot answer without it."""
        view = self.view(model_id)
        if view is None:
            raise ModelNotReadyError(
                f"model {model_id!r} has not been loaded by a worker yet; retry in a few seconds", field="model"
            )
        return view
