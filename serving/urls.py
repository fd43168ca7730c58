"""Routes of the SDK edge, included first at the site root by ``config.urls``: the SDK
endpoints and the health probes.

Django tries patterns in order, so the busiest endpoint comes first.
"""

from django.urls import path

from serving import evaluate, events, health, ofrep, payload, remote_eval, stream_links

urlpatterns = [
    path("ofrep/v1/evaluate/flags/<str:key>", ofrep.evaluate_flag, name="ofrep-evaluate-flag"),
    path("ofrep/v1/evaluate/flags", ofrep.evaluate_flags, name="ofrep-evaluate-flags"),
    path("api/v1/evaluate", evaluate.evaluate_view, name="sdk-evaluate"),
    path("api/features/<str:client_key>", payload.sdk_payload_view, name="sdk-payload"),
    path("api/eval/<str:client_key>", remote_eval.remote_eval_view, name="sdk-remote-eval"),
    path("sub/<str:client_key>", stream_links.subscribe_redirect, name="sdk-stream"),
    path("api/v1/events", events.events_ingest_view, name="events-ingest"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]
