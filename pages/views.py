"""The site's entry points: the root and the page a login without `next` lands on."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse


def home(request: HttpRequest) -> HttpResponseRedirect:
    """`/` (the admin's "View site"): staff go to the experiment list; anyone else logs in
    first and lands there, rather than on the admin index the login would lead to."""
    target = reverse("experiment-pages:list")
    user: Any = request.user
    if user.is_active and user.is_staff:
        return redirect(target)
    return redirect_to_login(target, login_url=reverse("admin:login"))
