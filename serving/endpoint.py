"""The frame of every SDK endpoint: plain Django views, not DRF, so that a request on this path
pays only for what it uses (a header lookup, a token bucket, orjson, the pure evaluation).

`sdk_endpoint` answers the CORS preflight, refuses other methods with 405 and a URL holding a
NUL character with 400, and turns every `Rejected` the view raises into a response in the
endpoint's error shape.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from config.metrics import RATE_LIMITED
from serving.errors import ErrorShape, Rejected, api_error
from serving.request import refuse_nul_in_url
from serving.responses import PREFLIGHT_HEADERS, json_response, preflight

__all__ = ["error_response", "sdk_endpoint"]

View = Callable[..., HttpResponse]


def error_response(exc: Rejected, shape: ErrorShape = api_error, arguments: Mapping[str, Any] | None = None
                   ) -> HttpResponse:
    """The response of a refusal: its status and headers, the body in the endpoint's shape."""
    return json_response(shape(exc, arguments or {}), exc.status, exc.headers)


def sdk_endpoint(
    *methods: str, shape: ErrorShape = api_error, cors: Mapping[str, str] | None = None
) -> Callable[[View], View]:
    """Serve ``methods`` (and OPTIONS). ``cors``: headers of every answer and of the preflight,
    for an endpoint whose CORS policy differs from the evaluation endpoints'."""
    allowed = ", ".join((*methods, "OPTIONS"))

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "OPTIONS":
                response = preflight(cors or PREFLIGHT_HEADERS)
            else:
                try:
                    if request.method not in methods:
                        raise Rejected(405, "method_not_allowed", f"Use {methods[0]}.")
                    refuse_nul_in_url(request)
                    response = view(request, *args, **kwargs)
                except Rejected as exc:
                    response = error_response(exc, shape, kwargs)
                    if exc.status == 429:
                        RATE_LIMITED.labels(view.__name__).inc()
                    if exc.status == 405:
                        response["Allow"] = allowed
            if cors:
                for name, value in cors.items():
                    response[name] = value
            return response

        return csrf_exempt(endpoint)

    return decorate
