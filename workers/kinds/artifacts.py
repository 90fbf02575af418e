"""Files a job links to instead of a multi-megabyte JSON result: safetensors, kept for a stated time.

The worker stores the file beside the job's record (``JobStore.put_artifact``) and the result carries an
:class:`ArtifactLink`; ``GET /v1/jobs/{id}/artifacts/{name}`` serves it to the job's tenant until it expires.
"""

from __future__ import annotations

from pydantic import Field

from workers.kinds.base import ResultPart

__all__ = ["ARTIFACT_MEDIA_TYPE", "ArtifactLink", "artifact_url"]

ARTIFACT_MEDIA_TYPE = "application/octet-stream"
"""safetensors has no registered media type; its files are served as bytes."""


def artifact_url(job_id: str, name: str) -> str:
    """The path the API serves the file on (``service/controllers/jobs.py`` routes it)."""
    return f"/v1/jobs/{job_id}/artifacts/{name}"


class ArtifactLink(ResultPart):
    """Where a result's tensors are: a safetensors file of this job's, readable by its tenant until ``expires_at``."""

    name: str = Field(description="the file's name, unique within the job")
    url: str = Field(description="the path to GET it from, with the job's API key")
    format: str = Field("safetensors", description="always safetensors: tensors by name, no code in the file")
    bytes: int = Field(ge=0, description="the file's size")
    expires_at: float = Field(description="when the file is deleted (Unix seconds); the job record lasts longer")
