"""Who may see and who may change: staff see every page; changes need model permissions.

A staff member without change permissions (the read-only role) sees the same pages with the
buttons left out, and gets 403 if they post anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from audit.types import Actor

View = TypeVar("View", bound=Callable[..., HttpResponse])

EXPERIMENT_CHANGE = "experiments.change_experiment"
EXPERIMENT_ADD = "experiments.add_experiment"
FLAG_CHANGE = "flags.change_flag"


def staff_required(view: View) -> View:
    """Logged-in, active staff only; everyone else goes to the admin login page."""
    return staff_member_required(view, login_url="admin:login")


def can(request: HttpRequest, permission: str) -> bool:
    user: Any = request.user
    return bool(user.is_active and user.is_staff and user.has_perm(permission))


def permission_required(*permissions: str) -> Callable[[View], View]:
    """Staff with every permission listed; other staff get 403 (not a login redirect)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not all(can(request, p) for p in permissions):
                raise PermissionDenied("Your role can view this page but not change anything.")
            return view(request, *args, **kwargs)

        return staff_required(cast(View, wrapped))

    return decorate


def page_actor(request: HttpRequest) -> Actor:
    user: Any = request.user
    return Actor(label=user.get_username(), user_id=user.pk, via="admin")
