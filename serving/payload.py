"""``GET /api/features/{clientKey}``: the environment's features in GrowthBook's SDK payload
shape, for SDKs that evaluate locally. Errors use the API's ``{code, message, details}`` body.
With streaming on, ``x-sse-support: enabled`` tells GrowthBook SDKs to open the stream
(``serving.stream_links``).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from serving import stream_links
from serving.endpoint import sdk_endpoint
from serving.errors import Rejected
from serving.request import authenticate
from serving.responses import etag_matches, json_response, not_modified
from serving.usage import recorder as usage

__all__ = ["sdk_payload_view"]


@sdk_endpoint("GET", "HEAD")
def sdk_payload_view(request: HttpRequest, client_key: str) -> HttpResponse:
    """The payload of the client key's environment, as its client payload setting serves it
    (403 ``remote_evaluation_only`` when it serves none). Rules outside their schedule are left
    out, and the cache lifetime ends at the next scheduled change."""
    info, compiled = authenticate(client_key, allow_server=False)
    now = time.time()
    usage.payload_fetched(info.environment_id, now)
    body, etag, stale_at = compiled.payload(now)
    if body is None:
        raise Rejected(403, "remote_evaluation_only",
                       "This environment serves client keys by remote evaluation only: start the SDK with "
                       "remoteEval (it posts to /api/eval/{clientKey}).")
    max_age = int(settings.SDK_PAYLOAD_MAX_AGE)
    if stale_at is not None:
        max_age = max(0, min(max_age, int(stale_at - now)))
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    if stream_links.enabled():
        headers[stream_links.SSE_SUPPORT_HEADER] = "enabled"
    if etag_matches(request.META.get("HTTP_IF_NONE_MATCH"), etag):
        return not_modified(etag, headers)
    return json_response(body, headers=headers)
