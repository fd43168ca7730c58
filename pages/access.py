"""Who may see and who may change: staff see every page; changes need the actions of
`base.permissions`, which decides for the pages as for the admin and the API.

A staff member without change rights (the read-only role) sees the same pages with the
buttons left out, and gets 403 if they post anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse

from audit.types import Actor
from base.models import Environment
from base.permissions import Action, allowed, require

View = TypeVar("View", bound=Callable[..., HttpResponse])


def staff_required(view: View) -> View:
    """Logged-in, active staff only; everyone else goes to the admin login page."""
    return staff_member_required(view, login_url="admin:login")


def can(request: HttpRequest, action: Action, *, environment: Environment | None = None) -> bool:
    """Whether the signed-in user may do `action`: decides which buttons a page shows."""
    return allowed(request.user, action, environment=environment)


def permission_required(
    *actions: Action, environment: Callable[..., Environment] | None = None
) -> Callable[[View], View]:
    """Staff allowed every action listed; other staff get 403 (not a login redirect).

    `environment`, given the view's URL arguments, names the environment the page acts in, so
    that the user's role there decides."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            where = environment(**kwargs) if environment is not None else None
            for action in actions:
                require(request.user, action, environment=where)
            return view(request, *args, **kwargs)

        return staff_required(cast(View, wrapped))

    return decorate


def page_actor(request: HttpRequest) -> Actor:
    user: Any = request.user
    return Actor(label=user.get_username(), user_id=user.pk, via="admin")
