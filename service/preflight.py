"""Checks a job before it is queued, so the errors a client can fix come back as 4xx at once.

The checks are the spec's own (:meth:`JobSpecBase.check <workers.kinds.base.JobSpecBase.check>`), run on the
model's :class:`ModelView`: the worker runs the same method again on the model it loaded, so a mistake gets one
code, field and status wherever it is caught. Then the job's estimated working memory (the spec's
``working_memory``, counted with the figures the core sizes its batches with) against what a worker allows (422,
naming the bytes). Unknown models and SAEs need only the registry; everything else needs the model's card and
tokenizer, which a worker publishes when it loads the model (embedded mode publishes them before the API
listens). A job submitted before any worker has described its model is accepted unchecked and its record says so
(``checked: false``); the worker's checks then fail it with the same codes. A ``callback_url`` must reach public
addresses only (:mod:`workers.webhooks`), checked with or without the model's card.
"""

from __future__ import annotations

from service.catalog import Catalog
from service.errors import JobTooLargeError
from workers.kinds import JobSpec
from workers.webhooks import WebhookPolicy, check_callback_url

__all__ = ["preflight"]


def preflight(catalog: Catalog, spec: JobSpec, *, memory_limit: int, webhooks: WebhookPolicy) -> bool:
    """Raise the error the worker would raise; ``False`` when the model's card is not known yet (unchecked).

    A ``callback_url`` is checked here, resolving its host (a blocking lookup bounded by the policy's timeout: this
    runs in a thread), whether or not the model is known; the worker checks it again before each delivery.
    """
    spec.check_entry(catalog.registry.get(spec.model))
    if spec.callback_url is not None:
        check_callback_url(str(spec.callback_url), webhooks)
    view = catalog.view(spec.model)
    if view is None:
        return False
    spec.check(view)
    needed = spec.working_memory(view)
    if needed > memory_limit:
        raise JobTooLargeError(
            f"this job needs an estimated {needed} bytes of working memory; a worker allows {memory_limit} bytes",
            field="prompt",
        )
    return True
