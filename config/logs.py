"""Secrets never reach a log line: management tokens and SDK keys are replaced by a fingerprint.

The filter sits on every handler (Django's `LOGGING` and gunicorn's loggers, see
`config/gunicorn.py`), so a key in a request path ("Forbidden: /api/features/sdk-client-…"), an
exception message or an access log line is redacted whichever logger wrote it. The fingerprint
(the first 6 hex digits of the key's SHA-256) tells two keys apart without revealing either.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

# Management tokens (sbm_ + 43 URL-safe characters) and SDK keys (sdk-client-/sdk-server-).
SECRET_RE = re.compile(r"(sbm_|sdk-client-|sdk-server-)[A-Za-z0-9_\-]{4,}")


def redact(text: str) -> str:
    """`text` with every token and SDK key replaced by its kind and a fingerprint."""
    if "sbm_" not in text and "sdk-" not in text:
        return text
    return SECRET_RE.sub(_fingerprint, text)


def _fingerprint(match: re.Match[str]) -> str:
    digest = hashlib.sha256(match.group(0).encode("utf-8", "surrogatepass")).hexdigest()[:6]
    return f"{match.group(1)}[redacted:{digest}]"


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


JSON_FIELDS = ("asctime", "levelname", "name", "message", "request_id")


def json_formatter() -> logging.Formatter:
    """One JSON object per line: time, level, logger, message, request id (and the exception)."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        " ".join(f"%({field})s" for field in JSON_FIELDS),
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


class RedactingGunicornLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's logger with the same filter on its error and access logs."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        json_lines = os.environ.get("LOG_FORMAT", "text") == "json"
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(RedactSecrets())
                if json_lines:
                    handler.setFormatter(json_formatter())

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """With LOG_FORMAT=json, an access line is a JSON object with the request's id."""
        if os.environ.get("LOG_FORMAT", "text") != "json":
            super().access(resp, req, environ, request_time)
            return
        if not self.cfg.accesslog:
            return
        headers = dict((name.lower(), value) for name, value in (resp.headers or []))
        fields = {
            "remote": environ.get("REMOTE_ADDR", "-"),
            "method": environ.get("REQUEST_METHOD", ""),
            "path": redact(environ.get("PATH_INFO", "")),
            "status": int(str(resp.status).split()[0]) if resp.status else 0,
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "bytes": getattr(resp, "sent", None),
            "request_id": headers.get("x-request-id", "-"),
        }
        self.access_log.info("request", extra=fields)
