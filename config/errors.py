"""Domain errors: raised by services, mapped to JSON `{code, message, details}` by the API layer."""

from typing import Any

from django.core.exceptions import PermissionDenied


class ApplicationError(Exception):
    """Base of every error a caller can fix; `status` is the HTTP status the API answers with."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details if details is not None else {}


class ValidationFailed(ApplicationError):
    status = 400
    code = "validation_error"


class NotFound(ApplicationError):
    status = 404
    code = "not_found"


class Conflict(ApplicationError):
    status = 409
    code = "conflict"


class Forbidden(ApplicationError, PermissionDenied):
    """A refusal by role. Also Django's `PermissionDenied`, so that the admin and the pages answer 403
    as the API does; the code is the one every 403 of the API carries."""

    status = 403
    code = "permission_denied"


class Unauthorized(ApplicationError):
    status = 401
    code = "unauthorized"
