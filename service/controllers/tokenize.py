"""``/v1/tokenize``: token ids and the token strings dashboards label axes with."""

from __future__ import annotations

from litestar import Controller, post

from service.deps import Services
from service.schemas import BODY_ERROR_RESPONSES, TokenizeRequest, TokenizeResponse

__all__ = ["TokenizeController"]


class TokenizeController(Controller):
    path = "/v1/tokenize"
    tags = ["tokenize"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @post(
        "/",
        responses=BODY_ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=True,
        summary="Tokenize a prompt as jobs will",
        operation_id="tokenize",
    )
    def tokenize(self, data: TokenizeRequest, services: Services) -> TokenizeResponse:
        view = services.catalog.ready_view(data.model)
        ids = view.tokenize(data.prompt, prepend_bos=data.prepend_bos)
        return TokenizeResponse(model=data.model, token_ids=ids, tokens=view.token_strings(ids), n_tokens=len(ids))
