"""``/v1/models``: served models with their facts, hook names and SAEs."""

from __future__ import annotations

from litestar import Controller, get

from service.deps import Services
from service.schemas import ERROR_RESPONSES, ModelInfo, ModelList

__all__ = ["ModelController"]


class ModelController(Controller):
    path = "/v1/models"
    tags = ["models"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get(
        "/",
        responses=ERROR_RESPONSES,
        sync_to_thread=True,
        summary="Served models",
        operation_id="list_models",
    )
    def list_models(self, services: Services) -> ModelList:
        return ModelList(items=[services.catalog.info(m) for m in services.catalog.registry.model_ids])

    @get(
        "/{model_id:str}",
        responses=ERROR_RESPONSES,
        sync_to_thread=True,
        summary="One model: facts, hook names, SAEs",
        operation_id="get_model",
    )
    def get_model(self, model_id: str, services: Services) -> ModelInfo:
        return services.catalog.info(model_id)
