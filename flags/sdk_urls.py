"""Routes of the SDK endpoints, included first at the site root by ``config.urls``.

Django tries patterns in order, so the busiest endpoint comes first.
"""

from django.urls import path

from flags import ofrep, sdk_views

urlpatterns = [
    path("ofrep/v1/evaluate/flags/<str:key>", ofrep.evaluate_flag, name="ofrep-evaluate-flag"),
    path("ofrep/v1/evaluate/flags", ofrep.evaluate_flags, name="ofrep-evaluate-flags"),
    path("api/v1/evaluate", sdk_views.evaluate_view, name="sdk-evaluate"),
    path("api/features/<str:client_key>", sdk_views.sdk_payload_view, name="sdk-payload"),
]
