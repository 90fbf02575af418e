"""Python client for interp-service: typed jobs of every kind, results as arrays, tidy frames and figures.

    from interp_client import Client
    client = Client("http://127.0.0.1:8000")
    result = client.patching(model="gemma-3-270m", clean_prompt=..., corrupted_prompt=..., answer=" Mary",
                             wrong_answer=" John", targets=["resid_pre"]).result()
    result.to_pandas(); result.figure()
"""

from interp_client.async_client import AsyncClient
from interp_client.client import Client
from interp_client.errors import (
    AuthenticationError,
    ConflictError,
    ConnectionFailedError,
    InterpError,
    InvalidRequestError,
    JobCancelledError,
    JobFailedError,
    JobTooLargeError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    ServerError,
    UnavailableError,
    UnknownJobError,
    UnknownModelError,
    UnknownSaeError,
    WaitTimeoutError,
)
from interp_client.jobs import AsyncJob, Job
from interp_client.models import JobEvent
from interp_client.transport import RetryPolicy

__all__ = [
    "AsyncClient",
    "AsyncJob",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "ConnectionFailedError",
    "InterpError",
    "InvalidRequestError",
    "Job",
    "JobCancelledError",
    "JobEvent",
    "JobFailedError",
    "JobTooLargeError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "RetryPolicy",
    "ServerError",
    "UnavailableError",
    "UnknownJobError",
    "UnknownModelError",
    "UnknownSaeError",
    "WaitTimeoutError",
]
