"""Domain errors: raised by services, mapped to JSON `{code, message, details}` by the API layer."""

import re
from collections.abc import Mapping
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


class Accepted(ApplicationError):
    """Not a failure: the write was taken to be made later (a change awaiting review, a scheduled
    change). The API answers 202 with `body()` instead of an error."""

    status = 202
    code = "accepted"

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class Unauthorized(ApplicationError):
    status = 401
    code = "unauthorized"


# Names of list items in error paths, where dropping a final "s" would not do.
_ITEM_NAMES = {"prerequisites": "prerequisite", "funnel_steps": "funnel step", "ids": "id"}
_PATH_PART = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def error_path_label(path: str) -> str:
    """A `details` key as people read it: `steps[1].percent` is "Step 2, percent", `rules[2]`
    "Rule 3", `hash_attribute` "Hash attribute" (list positions count from 1)."""
    words: list[str] = []
    for name, index in _PATH_PART.findall(path):
        if name:
            words.append(name.replace("_", " "))
        elif words:
            item = _ITEM_NAMES.get(words[-1].replace(" ", "_"), words[-1].removesuffix("s"))
            words[-1] = f"{item} {int(index) + 1 if index.isdigit() else index}"
    text = ", ".join(words) or path
    return text[:1].upper() + text[1:]


def error_lines(details: Any, *, names: bool = False) -> list[str]:
    """A service error's `details` ({path: [messages]}) as lines people read, each message after
    the words of its path: "Step 2, percent: Each step must serve more units than the last.".
    With `names`, the lists hold names rather than messages: one line per path, names joined
    ("Experiments: a, b")."""
    if not isinstance(details, Mapping):
        return []
    lines: list[str] = []
    for key, messages in details.items():
        items = [str(m) for m in messages] if isinstance(messages, (list, tuple)) else [str(messages)]
        label = error_path_label(str(key))
        if names:
            lines.append(f"{label}: {', '.join(items)}.")
        else:
            lines.extend(f"{label}: {message}" for message in items)
    return lines


def error_text(error: ApplicationError, *, names: bool = False) -> str:
    """The error's message and its details' lines, as one text for a message banner."""
    return " ".join([error.message, *error_lines(error.details, names=names)])
