from django.contrib import admin
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from config.metrics_http import metrics_view


def _favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    # Resolved per request: with hashed static names the manifest exists only after collectstatic.
    return HttpResponsePermanentRedirect(static("pages/favicon.svg"))


urlpatterns = [
    # The SDK edge comes first (its endpoints take most of the traffic, and Django tries patterns in
    # order); it also answers the health probes.
    path("", include("serving.urls")),
    # Prometheus metrics, for the monitoring system only (config/metrics_http.py).
    path("metrics", metrics_view, name="metrics"),
    # Browsers ask for it on every page, the admin's included.
    path("favicon.ico", _favicon),
    # Environments and API tokens moved from the flags app to the base app: old links still work.
    re_path(r"^admin/flags/(?P<model>environment|apitoken)/(?P<rest>.*)$",
            RedirectView.as_view(url="/admin/base/%(model)s/%(rest)s", permanent=True, query_string=True)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("flags.urls")),
    path("api/v1/", include("audit.urls")),
    path("api/v1/", include("experiments.urls")),
    path("api/v1/", include("guarded.urls")),
    path("experiments/", include("pages.experiments.urls")),
    path("flags/", include("pages.flags.urls")),
    path("holdouts/", include("pages.holdouts.urls")),
    path("", include("pages.urls")),
    path("", include("base.urls")),
]
