"""One table from error codes to statuses; server-side faults reach clients as a code, never as their text."""

from __future__ import annotations

import pydantic
import pytest

from service.errors import STATUS_BY_CODE, invalid_request_from, status_for
from workers.core.errors import (
    CoreError,
    InvalidRequestError,
    ModelLoadError,
    PromptTooLongError,
    RegistryConfigError,
    SaeFormatError,
    UnknownModelError,
    UnknownSaeError,
)
from workers.kinds import job_spec_adapter


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidRequestError("x"), 400),
        (UnknownModelError("x"), 404),
        (UnknownSaeError("x"), 404),
        (PromptTooLongError("x"), 413),
        (ModelLoadError("x"), 500),
        (InvalidRequestError("x", code="length_mismatch"), 400),
    ],
)
def test_codes_map_to_statuses_in_one_table(error: CoreError, status: int) -> None:
    assert status_for(error.code) == status


def test_core_errors_carry_no_status() -> None:
    assert not hasattr(CoreError("x"), "status")


@pytest.mark.parametrize("error_type", [ModelLoadError, RegistryConfigError, SaeFormatError])
def test_server_faults_hide_their_text(error_type: type[CoreError]) -> None:
    secret = "could not read /srv/cache/models/gemma/model.safetensors: Errno 13"
    wire = error_type(secret, field="model").to_dict()
    assert wire["code"] == error_type.code and "/srv" not in str(wire["message"]) and "Errno" not in str(wire)
    assert STATUS_BY_CODE[error_type.code] == 500


def test_request_errors_keep_their_message() -> None:
    assert InvalidRequestError("layers [7] out of range", field="layers").to_dict()["message"] == (
        "layers [7] out of range"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "telepathy", "model": "m"}, "kind"),
        ({"model": "m"}, "kind"),
        ({"kind": "patching", "model": "m", "clean_prompt": "a", "corrupted_prompt": "b", "answer": "x",
          "wrong_answer": "y", "targets": ["sideways"]}, "targets.0"),
        ({"kind": "attribution", "model": "m", "prompt": "a", "target": {"token": "x"}, "n_steps": 0}, "n_steps"),
        ({"kind": "attribution", "model": "m", "prompt": "a", "target": {"token": "x"}, "n_steps": "many"}, "n_steps"),
        ({"kind": "steer", "model": "m", "prompt": "a", "sae": "s", "feature": 1, "bogus": 1}, "bogus"),
        ({"kind": "attribution", "model": "m", "prompt": "a", "target": {}}, "target.token"),  # a union of models
    ],
)
def test_validation_errors_name_the_field_without_the_kind_prefix(body: dict[str, object], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        job_spec_adapter.validate_python(body)
    error = invalid_request_from(caught.value)
    assert error.code == "invalid_request" and error.field == field
    assert f"(field {field})" in error.message
