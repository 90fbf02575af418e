"""The compute core's error types.

Every error a caller can fix carries a stable snake_case ``code`` and the request ``field`` it is about, so the
service maps it to a 4xx JSON body in one place. The core never uses ``assert`` for input checks.
"""

from __future__ import annotations


class CoreError(Exception):
    """Base of every error the compute core raises on purpose."""

    code = "core_error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str | None]:
        """The wire-safe form stored in job records: never a traceback."""
        return {"code": self.code, "message": self.message, "field": self.field}


class InvalidRequestError(CoreError):
    """A request value is malformed or out of range."""

    code = "invalid_request"


class UnknownModelError(CoreError):
    """A model id that the registry does not serve."""

    code = "unknown_model"
    status = 404


class UnknownSaeError(CoreError):
    """An SAE id that the registry does not list for the model."""

    code = "unknown_sae"
    status = 404


class UnknownHookError(CoreError):
    """A hook name the model does not have."""

    code = "unknown_hook"


class PromptError(CoreError):
    """An empty prompt, or one over the model's token limit."""

    code = "invalid_prompt"


class PromptTooLongError(PromptError):
    code = "prompt_too_long"
    status = 413


class ShapeMismatchError(CoreError):
    """A value written to a hook does not have the shape of what it replaces."""

    code = "shape_mismatch"


class ModelLoadError(CoreError):
    """Weights could not be loaded or converted; the server side is at fault, not the request."""

    code = "model_load_failed"
    status = 500


class JobCancelledError(CoreError):
    """The caller cancelled the job; raised between chunks of work."""

    code = "cancelled"
    status = 409


class RegistryConfigError(CoreError):
    """The model registry file is malformed; ``field`` is the dotted key at fault. A deployment error."""

    code = "invalid_registry"
    status = 500


class SaeFormatError(CoreError):
    """SAE files that cannot be read: missing, corrupt or truncated, or inconsistent with their config."""

    code = "invalid_sae"
    status = 500
