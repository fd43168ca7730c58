"""Secrets never reach a log line: management tokens and SDK keys are replaced by a fingerprint.

The filter sits on every handler (Django's `LOGGING` and gunicorn's loggers, see
`config/gunicorn.py`), so a key in a request path ("Forbidden: /api/features/sdk-client-…"), an
exception message or an access log line is redacted whichever logger wrote it. The fingerprint
(the first 6 hex digits of the key's SHA-256) tells two keys apart without revealing either.
"""

from __future__ import annotations

import hashlib
import logging
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


class RedactingGunicornLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's logger with the same filter on its error and access logs."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(RedactSecrets())
