"""The error model of the SDK edge: every refusal is a `Rejected` (HTTP status, a machine code, a
message for people, optional headers and details), raised wherever the request is found wanting
and turned into a response in one place (`serving.endpoint`). Each endpoint chooses only the
body's shape: `{code, message, details}` for the Splitbase API, OFREP's own for OFREP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from config.api import error_body

__all__ = ["ErrorShape", "Rejected", "api_error"]


class Rejected(Exception):
    """A request refused: HTTP status, a machine code, a message, headers and details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details


# The body of a refusal, given the refusal and the view's URL arguments.
ErrorShape = Callable[[Rejected, Mapping[str, Any]], dict[str, Any]]


def api_error(exc: Rejected, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The Splitbase API's error body: `{code, message, details}`."""
    return error_body(exc.code, exc.message, exc.details)
