from django.contrib import admin
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz, readyz


def _favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    # Resolved per request: with hashed static names the manifest exists only after collectstatic.
    return HttpResponsePermanentRedirect(static("experiments/favicon.svg"))


urlpatterns = [
    # The SDK endpoints come first: they take most of the traffic, and Django tries patterns in order.
    path("", include("flags.sdk_urls")),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    # Browsers ask for it on every page, the admin's included.
    path("favicon.ico", _favicon),
    path("admin/", admin.site.urls),
    path("api/v1/", include("flags.urls")),
    path("api/v1/", include("audit.urls")),
    path("api/v1/", include("experiments.urls")),
    path("experiments/", include("experiments.pages.urls")),
    path("flags/", include("experiments.pages.flag_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
