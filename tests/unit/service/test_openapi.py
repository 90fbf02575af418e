"""openapi.yaml is generated from the app; regenerate with ``interp openapi`` when this fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from service.openapi import openapi_document, render_openapi

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_openapi_yaml_is_in_sync_with_the_app() -> None:
    committed = (REPO_ROOT / "openapi.yaml").read_text(encoding="utf-8")
    assert committed == render_openapi(), "openapi.yaml is stale: run `interp openapi`"


def test_openapi_documents_limits_errors_and_kinds() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    patching = schemas["PatchingSpec"]
    assert patching["additionalProperties"] is False
    assert "head_out_by_pos" in patching["properties"]["targets"]["items"]["enum"]
    attribution = schemas["AttributionSpec"]["properties"]
    assert (attribution["n_steps"]["minimum"], attribution["n_steps"]["maximum"]) == (1, 512)
    post = document["paths"]["/v1/jobs"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in post["parameters"]}
    assert set(document["paths"]) >= {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events", "/v1/models",
                                      "/v1/models/{model_id}", "/v1/tokenize", "/healthz", "/readyz"}


def test_the_api_process_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from service.app import create_app\n"
        "from service.settings import ServiceSettings\n"
        "from service.openapi import openapi_document\n"
        "openapi_document()\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.strip() == "False"
