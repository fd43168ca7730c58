"""uvicorn serving the streaming application: uvloop and httptools, the listening address from
``STREAM_BIND``, the open-files limit raised to what the system allows (a stream is a socket).

On SIGTERM or Ctrl-C every stream is ended first (clients reconnect elsewhere, or here after a
restart, and resume with ``Last-Event-ID``), then the server stops.
"""

from __future__ import annotations

import logging
import resource
import socket
from typing import Any

import uvicorn
from django.conf import settings

from serving.streams.app import build, stream_settings
from serving.streams.changes import Changes
from serving.streams.hub import Hub

__all__ = ["parse_bind", "run"]

logger = logging.getLogger(__name__)
GRACE_SECONDS = 5


class StreamServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, hub: Hub) -> None:
        super().__init__(config)
        self.hub = hub

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.hub.close_all()
        await super().shutdown(sockets)


def parse_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SystemExit(f"STREAM_BIND must be HOST:PORT, not {bind!r}.")
    return host.strip("[]"), int(port)


def raise_open_files_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def run(**overrides: Any) -> None:
    host, port = parse_bind(str(settings.STREAM_BIND))
    limit = raise_open_files_limit()
    hub = Hub(**stream_settings())
    app = build(hub, Changes(hub))
    config = uvicorn.Config(
        app, host=host, port=port, loop="uvloop", http="httptools", ws="none", lifespan="on",
        log_config=None, access_log=False, backlog=4096, timeout_graceful_shutdown=GRACE_SECONDS,
        server_header=False, **overrides,
    )
    logger.info("Streaming on %s:%s (up to %s streams, %s open files).", host, port,
                settings.STREAM_MAX_CONNECTIONS, limit)
    StreamServer(config, hub).run()
