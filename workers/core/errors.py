"""The compute core's error types.

Every error carries a stable snake_case ``code`` and the request ``field`` it is about; the service alone decides
what HTTP status a code gets. The core never uses ``assert`` for input checks.
"""

from __future__ import annotations


class CoreError(Exception):
    """Base of every error the compute core raises on purpose."""

    code = "core_error"
    public_message: str | None = None
    """Set for server-side faults: what a client is told instead of the message (which may hold paths or
    exception text, and is logged)."""

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    @property
    def server_fault(self) -> bool:
        return self.public_message is not None

    def to_dict(self) -> dict[str, str | None]:
        """The wire-safe form stored in job records and sent to clients: never a traceback or a server path."""
        message = self.public_message if self.public_message is not None else self.message
        return {"code": self.code, "message": message, "field": self.field}


class InvalidRequestError(CoreError):
    """A request value is malformed or out of range."""

    code = "invalid_request"


class UnknownModelError(CoreError):
    """A model id that the registry does not serve."""

    code = "unknown_model"


class UnknownSaeError(CoreError):
    """An SAE id that the registry does not list for the model."""

    code = "unknown_sae"


class UnknownHookError(CoreError):
    """A hook name the model does not have."""

    code = "unknown_hook"


class PromptError(CoreError):
    """An empty prompt, or one over the model's token limit."""

    code = "invalid_prompt"


class PromptTooLongError(PromptError):
    code = "prompt_too_long"


class ShapeMismatchError(CoreError):
    """A value written to a hook does not have the shape of what it replaces."""

    code = "shape_mismatch"


class ModelLoadError(CoreError):
    """Weights could not be loaded or converted; the server side is at fault, not the request."""

    code = "model_load_failed"
    public_message = "the model could not be loaded on the server; the error was logged"


class JobCancelledError(CoreError):
    """The caller cancelled the job; raised between chunks of work."""

    code = "cancelled"


class RegistryConfigError(CoreError):
    """The model registry file is malformed; ``field`` is the dotted key at fault. A deployment error."""

    code = "invalid_registry"
    public_message = "the server's model registry is misconfigured; the error was logged"


class SaeFormatError(CoreError):
    """SAE files that cannot be read: missing, corrupt or truncated, or inconsistent with their config."""

    code = "invalid_sae"
    public_message = "the SAE's files could not be read on the server; the error was logged"
