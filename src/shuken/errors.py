"""The one error vocabulary: services raise these; the API and CLI each translate them in one place.

Each error knows its HTTP status and its OpenAI error `type`/`code`, so no router invents error shapes.
"""

from __future__ import annotations


class ShukenError(Exception):
    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def to_openai(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(ShukenError):
    status = 400
    type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class Unauthorized(ShukenError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(ShukenError):
    status = 403
    type = "permission_error"


class NotFound(ShukenError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class QueueFull(ShukenError):
    status = 429
    type = "rate_limit_exceeded"
    code = "queue_full"


class QuotaExceeded(ShukenError):
    """A key's quota is used up; `retry_after` seconds until it has room again."""

    status = 429
    type = "rate_limit_exceeded"
    code = "quota_exceeded"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = max(1, int(retry_after))


class Unavailable(ShukenError):
    status = 503
    type = "server_error"
    code = "unavailable"


class UpstreamError(ShukenError):
    status = 502
    type = "upstream_error"


class ModelIntegrityError(ShukenError):
    """A model file does not match the hash in its manifest: it must not be loaded."""

    status = 503
    type = "server_error"
    code = "model_integrity"


class PayloadTooLarge(ShukenError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"
