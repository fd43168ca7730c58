"""The service's OpenAPI schema loaded by schemathesis, with requests going through the WSGI
application in the test's own database transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test.utils import override_settings


@contextmanager
def schema_over_wsgi(path_regex: str) -> Iterator[Any]:
    """The operations of /api/schema/ whose path matches `path_regex`."""
    # Like Django's test client, keep the application from closing the test's connection (and
    # its transaction) at the end of each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        # The schema is behind a login by default; loading it is not what these tests are about.
        with override_settings(API_DOCS_ACCESS="public"):
            loaded = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
        yield loaded.include(path_regex=path_regex)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
