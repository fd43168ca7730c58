"""The streaming process: server-sent event streams that tell SDKs of configuration changes.

A separate asynchronous process (``python -m serving.streams``, uvicorn with a Starlette
application) holds the streams, so that an open stream never occupies a web worker. Modules:

- ``messages``: what a stream sends (``State``: one environment's current configuration as a
  GrowthBook ``features`` event and an OFREP ``refetchEvaluation`` event, encoded once);
- ``hub``: the open streams by environment, the connection limits, fan-out, heartbeats;
- ``changes``: PostgreSQL ``LISTEN`` for the environments' change notifications, and a check
  each second as a fallback (and for scheduled rule starts and ends);
- ``app``: the HTTP endpoints (``/sub/{clientKey}``, ``/ofrep/v1/event-stream``, probes,
  metrics);
- ``server``: uvicorn, started by ``__main__``.
"""
