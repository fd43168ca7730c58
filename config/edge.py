"""The WSGI application: the SDK edge's requests take a short path, every other request Django's.

Most of the traffic is SDKs calling a handful of endpoints (OFREP, the GrowthBook payload and
remote evaluation, ``/api/v1/evaluate``, the events API). Those views are plain functions that
authenticate an SDK key, rate limit it and answer JSON with their own CORS headers and limits
(``serving.endpoint``); sessions, CSRF, authentication, messages, static files, the review gate
and the login throttle do nothing for them but cost time on every request. ``EdgeDispatcher``
looks at the path first: an SDK route goes to a Django handler built with
``SDK_EDGE_MIDDLEWARE`` and the routes of ``SDK_EDGE_URLCONF`` (whose 400/403/404/500 answers
are JSON), anything else to the handler built with ``MIDDLEWARE``. An SDK answer carries the
same headers either way: ``EdgeResponseHeaders`` adds what the page middleware would have added
to it (docs/operations.md, "Serving layout").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import django
from csp.constants import HEADER as CSP_HEADER
from csp.constants import HEADER_REPORT_ONLY as CSP_REPORT_ONLY_HEADER
from csp.utils import build_policy
from django.conf import settings
from django.core.exceptions import DisallowedHost, PermissionDenied
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response, response_for_exception
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponseBase
from django.urls import set_urlconf
from django.utils.module_loading import import_string

__all__ = ["EDGE_PATH", "EdgeDispatcher", "EdgeHandlerMixin", "EdgeResponseHeaders", "edge_application"]

# Exactly the SDK routes of serving/urls.py (a key or flag segment is Django's `str`: no slash).
EDGE_PATH = re.compile(
    r"/(?:ofrep/v1/evaluate/flags(?:/[^/]+)?|api/v1/evaluate|api/v1/events|api/features/[^/]+|api/eval/[^/]+)\Z"
)

StartResponse = Callable[..., Any]


class EdgeHandlerMixin(BaseHandler):
    """A Django handler whose middleware is ``SDK_EDGE_MIDDLEWARE`` (synchronous, new-style
    middleware only) and whose requests resolve against ``SDK_EDGE_URLCONF``."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        handler = convert_exception_to_response(self._get_response)  # type: ignore[attr-defined]
        # OpenTelemetry's Django instrumentation (config/tracing.py) adds its middleware to
        # MIDDLEWARE: SDK requests are traced too.
        tracing = [path for path in settings.MIDDLEWARE if path.startswith("opentelemetry.")]
        for path in reversed([*tracing, *settings.SDK_EDGE_MIDDLEWARE]):
            instance = import_string(path)(handler)
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        chain: Callable[[HttpRequest], HttpResponseBase] = handler  # type: ignore[assignment]  # sync only

        def edge_chain(request: HttpRequest) -> HttpResponseBase:
            # Django sets ROOT_URLCONF for the thread first; errors raised before the view is
            # resolved (a bad Host header) take their answer from the edge's URLconf too.
            set_urlconf(request.urlconf)
            return chain(request)

        self._middleware_chain = edge_chain

    def get_response(self, request: HttpRequest) -> HttpResponseBase:
        request.urlconf = settings.SDK_EDGE_URLCONF
        return super().get_response(request)


class EdgeWSGIHandler(EdgeHandlerMixin, WSGIHandler):
    pass


class EdgeDispatcher:
    """SDK routes to the edge's handler, everything else to Django's usual one."""

    def __init__(self) -> None:
        self.full = WSGIHandler()
        self.edge = EdgeWSGIHandler()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if EDGE_PATH.match(environ.get("PATH_INFO", "")):
            return self.edge(environ, start_response)
        return self.full(environ, start_response)


def edge_application() -> WSGIHandler | EdgeDispatcher:
    """What ``get_wsgi_application`` gives, with the SDK edge's short path unless
    ``SDK_EDGE_LEAN`` is false."""
    django.setup(set_prefix=False)
    if not settings.SDK_EDGE_LEAN:
        return WSGIHandler()
    return EdgeDispatcher()


class EdgeResponseHeaders:
    """On the SDK edge, what the page middleware adds to an SDK answer, worked out once: the
    Content-Security-Policy (django-csp), ``X-Frame-Options``, ``Content-Length``; and the checks
    of ``CommonMiddleware`` (the Host header against ``ALLOWED_HOSTS``, disallowed user agents)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.policies: list[tuple[str, str, tuple[str, ...]]] = []
        for header, setting, report_only in ((CSP_HEADER, "CONTENT_SECURITY_POLICY", False),
                                             (CSP_REPORT_ONLY_HEADER, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True)):
            policy = build_policy(report_only=report_only)
            if policy:
                prefixes = tuple((getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ())
                self.policies.append((header, policy, prefixes))
        self.frame_options = str(getattr(settings, "X_FRAME_OPTIONS", "DENY")).upper()
        self.user_agents = [re.compile(p) if isinstance(p, str) else p for p in settings.DISALLOWED_USER_AGENTS]

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase
        try:
            if self.user_agents:
                agent = request.META.get("HTTP_USER_AGENT")
                if agent is not None and any(p.search(agent) for p in self.user_agents):
                    raise PermissionDenied("Forbidden user agent")
            request.get_host()  # DisallowedHost (400) for a host outside ALLOWED_HOSTS
        except (PermissionDenied, DisallowedHost) as exc:
            # Answered here so that the refusal gets the headers below, as on Django's path.
            response = response_for_exception(request, exc)
        else:
            response = self.get_response(request)
        if not (settings.DEBUG and response.status_code in (404, 500)):
            for header, policy, prefixes in self.policies:
                if header not in response and not (prefixes and request.path_info.startswith(prefixes)):
                    response[header] = policy
        if response.get("X-Frame-Options") is None and not getattr(response, "xframe_options_exempt", False):
            response["X-Frame-Options"] = self.frame_options
        if not response.streaming and not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))  # type: ignore[attr-defined]
        return response
