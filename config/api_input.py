"""How the management API reads its input: JSON bodies and paging parameters, with limits.

Kept apart from `config.api` because DRF reads these classes from its settings while its own
views module is being imported.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from config.json_values import JsonInputError, loads_limited


class StrictJSONParser(parsers.BaseParser):
    """JSON bodies of the management API, parsed with the same limits as every other input:
    at most `JSON_MAX_DEPTH` levels of nesting, finite numbers only (`1e309` is refused, not
    read as infinity), valid UTF-8 (docs/api.md, Limits)."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            return loads_limited(raw, max_depth=int(settings.JSON_MAX_DEPTH))
        except JsonInputError as exc:
            raise exceptions.ParseError(exc.message) from exc


class SafeLimitOffsetPagination(LimitOffsetPagination):
    """`?limit=` and `?offset=` as DRF reads them, with the offset bounded so that a huge number
    is a 400 instead of a database error."""

    max_limit = 1000
    max_offset = 10**12

    def get_offset(self, request: Request) -> int:
        raw = request.query_params.get(self.offset_query_param)
        if raw is not None and raw.strip().isdigit() and int(raw) > self.max_offset:
            raise exceptions.ValidationError({"offset": [f"Use an offset of at most {self.max_offset}."]})
        return int(super().get_offset(request))
