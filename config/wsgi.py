"""WSGI entry point (gunicorn config.wsgi). SDK requests take the SDK edge's short path
(config/edge.py)."""

import os

from config.edge import edge_application
from config.tracing import tracing_configure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
tracing_configure()  # only with OTEL_ENABLED=true

application = edge_application()
