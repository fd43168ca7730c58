"""The Content-Security-Policy header of every HTML answer (django-csp).

The pages (`pages/`), the API documentation and the login page run under the strict policy of
`CONTENT_SECURITY_POLICY`: scripts, styles, images and fonts from this site only, no inline
script, no inline style, no `eval`, no framing, forms posted only here.

The admin is built on django-unfold, whose Alpine.js components evaluate their `x-data`
expressions with the `Function` constructor and whose templates carry `style` attributes and a
theme `<style>` element. Its answers therefore get `CONTENT_SECURITY_POLICY_ADMIN_UPDATE` on top
of the strict policy ('unsafe-eval' for scripts, 'unsafe-inline' for styles); inline
`<script>` stays refused there too.
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

__all__ = ["ContentSecurityPolicy", "is_admin_request"]


def is_admin_request(request: HttpRequest) -> bool:
    """True for answers of the admin site (its login and lockout pages included)."""
    match = getattr(request, "resolver_match", None)
    return match is not None and match.app_name == "admin"


class ContentSecurityPolicy(CSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and parts.update is None and is_admin_request(request):
            parts.update = dict(settings.CONTENT_SECURITY_POLICY_ADMIN_UPDATE)
        return parts
