"""Every error the server can report, and the text a model reads for each.

::

    CustomerIOMCPError                 base; ``message`` is what the model reads
    ├── InputError                     the call was refused locally; nothing was sent
    │   └── UnknownToolError
    ├── ConfigurationError             a credential or setting is missing; nothing was sent
    ├── BusyError                      every call slot stayed taken; nothing was sent
    └── DeliveryError                  the request went (or may have gone) to Customer.io
        ├── TransportError             no HTTP answer: connection failed, timed out or dropped
        └── APIError                   Customer.io answered with an error status
            ├── BadRequestError        400 / 422, with Customer.io's own ``meta.error`` text
            ├── AuthenticationError    401 / 403
            ├── NotFoundError          404
            ├── RateLimitedError       429 after every retry
            ├── ServerError            5xx after every retry
            └── PartialFailureError    v2 batch answered 207 with per-operation ``errors``

Lower-level errors (``httpx2``, ``jsonschema``) are translated with ``raise ... from exc`` so that
no stack trace, header or credential ever reaches a tool result.
"""

from __future__ import annotations

from typing import Any


class CustomerIOMCPError(Exception):
    """Base class; ``message`` is complete, actionable text for a model."""

    kind = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "message": self.message, **self.details}


class InputError(CustomerIOMCPError):
    """The arguments cannot make a valid request; the fix is in the call itself."""

    kind = "invalid_input"

    def __init__(self, field: str, problem: str, fix: str, **details: Any) -> None:
        super().__init__(
            f"`{field}` {problem.rstrip('.')}. Fix: {fix.rstrip('.')}. Nothing was sent to Customer.io.", **details
        )
        self.field = field
        self.details = {"field": field, "problem": problem, "fix": fix, **details}


class UnknownToolError(InputError):
    kind = "unknown_tool"


class ConfigurationError(CustomerIOMCPError):
    """The server is missing configuration that only its operator can supply."""

    kind = "configuration"


class BusyError(CustomerIOMCPError):
    """The server refused the call before it started: too many calls under way. Nothing was sent."""

    kind = "server_busy"


class DeliveryError(CustomerIOMCPError):
    """Something went wrong after the request left (or tried to leave) this process."""

    kind = "delivery"


class TransportError(DeliveryError):
    kind = "transport"


class APIError(DeliveryError):
    kind = "api"

    def __init__(self, message: str, *, status: int, body: Any = None, **details: Any) -> None:
        super().__init__(message, status=status, response=body, **details)
        self.status = status
        self.body = body


class BadRequestError(APIError):
    kind = "bad_request"


class AuthenticationError(APIError):
    kind = "authentication"


class NotFoundError(APIError):
    kind = "not_found"


class RateLimitedError(APIError):
    kind = "rate_limited"


class ServerError(APIError):
    kind = "server_error"


class PartialFailureError(APIError):
    kind = "partial_failure"
