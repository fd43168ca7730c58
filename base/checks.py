"""Helpers of the services' input checks: errors are collected per field and raised together
as one `ValidationFailed` (a 400 naming every bad field), before any write."""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from base.keys import Errors
from config.errors import ValidationFailed


def add_error(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def raise_if(errors: Errors, message: str = "The input is not valid.") -> None:
    if errors:
        raise ValidationFailed(message, details=errors)


def is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
