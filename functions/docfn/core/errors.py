"""Errors the core raises; every adapter maps them to the same JSON error body and status."""

from __future__ import annotations


class DocfnError(Exception):
    """Base error: ``status`` is the HTTP status an adapter should answer with."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class BadInput(DocfnError):
    status, code = 400, "bad_input"


class EncryptedPdf(BadInput):
    """A PDF that opens only with a password: bad input of its own kind, so a client can tell it
    apart from a broken file (docfn takes no passwords; the file must be decrypted first)."""

    code = "encrypted_pdf"


class Unauthorized(DocfnError):
    status, code = 401, "unauthorized"


class Forbidden(DocfnError):
    """The function's own credentials may not do what was asked (S3 AccessDenied on an object a
    caller named): the caller's to fix, so never retryable and never a 503."""

    status, code = 403, "access_denied"


class NotFound(DocfnError):
    status, code = 404, "not_found"


class Conflict(DocfnError):
    """The resource is in a state that does not allow the request (a finished task canceled)."""

    status, code = 409, "conflict"


class PayloadTooLarge(DocfnError):
    status, code = 413, "too_large"


class UnsupportedMediaType(DocfnError):
    status, code = 415, "unsupported_media_type"


class BadOptions(DocfnError):
    status, code = 422, "bad_options"


class ClientClosedRequest(DocfnError):
    """The client went away before its request was read (nginx's 499): logged and counted as such,
    never as an error of the server. Nobody reads the answer."""

    status, code = 499, "client_closed_request"


class Overloaded(DocfnError):
    status, code = 429, "overloaded"


class Unavailable(DocfnError):
    status, code = 503, "unavailable"


class PackNotConfigured(Unavailable):
    """The function has no model pack to load (none named, none published where it looks): 503, with
    the variable to set and how to publish one. It stays in rotation so callers read the message."""

    code = "model_pack_not_configured"


class DeadlineExceeded(DocfnError):
    status, code = 504, "deadline_exceeded"


class ClientGone(DocfnError):
    """The caller disconnected before its answer was ready (nginx's 499: nobody reads the status)."""

    status, code = 499, "client_closed_request"


class ConfigurationError(DocfnError):
    status, code = 500, "configuration_error"
