"""Who is asking: management API tokens (read or write scope) or a staff session, what they may
do (`HasManagementScope`, asking `base.permissions`), and the throttle on admin logins."""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from axes.backends import AxesStandaloneBackend
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from audit.types import Actor
from base.keys import TOKEN_PREFIX, token_digest
from base.models import ApiToken, Environment
from base.permissions import Action, require
from config.errors import Forbidden

if TYPE_CHECKING:
    from rest_framework.views import APIView


class ManagementTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        parts = header.split()
        if len(parts) != 2 or parts[0] not in ("Bearer", "Token") or not parts[1].startswith(TOKEN_PREFIX):
            return None
        token = ApiToken.objects.select_related("user").filter(token_hash=token_digest(parts[1])).first()
        if token is None or token.revoked_at is not None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class HasManagementScope(permissions.BasePermission):
    """Each API view says which action each of its methods performs (`required_actions`, by HTTP
    method, in `base.permissions`' vocabulary). A request needs its user's rights for that action:
    the staff member signed in, or the owner of the token, checked now, so a token never does more
    than its owner may at the moment. A read-scope token is further held to actions that change
    nothing. A method the view does not map is refused to everyone.

    A view about something in one environment names it (`permission_environment()`), so that the
    owner's role there decides; a token that names environments acts only in those, and changes
    nothing that all environments share."""

    def has_permission(self, request: Request, view: "APIView") -> bool:
        user: Any = request.user
        if user is None or not user.is_authenticated:
            return False
        action = required_action(view, request.method or "")
        if action is None:
            raise Forbidden("This endpoint does not say what it needs; nobody may call it.",
                            details={"method": request.method})
        token = request.auth
        if isinstance(token, ApiToken) and token.scope != ApiToken.Scope.WRITE and action.writes:
            raise Forbidden("This token cannot change configuration (read scope).", details={"action": action.value})
        environment = view_environment(view)
        if isinstance(token, ApiToken):
            token_may_act_in(token, action, environment)
        require(user, action, environment=environment)
        return True


def view_environment(view: Any) -> Environment | None:
    """The environment a request is about, when its view names one (its URL says which)."""
    resolve = getattr(view, "permission_environment", None)
    return resolve() if resolve is not None else None


def token_may_act_in(token: ApiToken, action: Action, environment: Environment | None) -> None:
    """Refuse a token limited to some environments outside them, and its writes that concern
    no single environment."""
    limited = {env.key for env in token.environments.all()}
    if not limited:
        return
    if environment is not None and environment.key not in limited:
        raise Forbidden(f"This token acts only in {', '.join(sorted(limited))}.",
                        details={"action": action.value, "environment": environment.key})
    if environment is None and action.writes:
        raise Forbidden(f"This token acts only in {', '.join(sorted(limited))}; it cannot change what all "
                        "environments share.", details={"action": action.value})


def required_action(view: Any, method: str) -> Action | None:
    """The action a view declares for an HTTP method (HEAD and OPTIONS ask what GET does)."""
    declared: Mapping[str, str] = getattr(view, "required_actions", {})
    name = declared.get("GET" if method.upper() in ("HEAD", "OPTIONS") else method.upper())
    try:
        return Action(name) if name is not None else None
    except ValueError:
        return None


def request_actor(request: Request) -> Actor:
    user: Any = request.user
    token = request.auth
    label = user.get_username() if user is not None else "anonymous"
    if isinstance(token, ApiToken):
        label = f"{label} (token {token.prefix}…)"
    return Actor(label=label, user_id=getattr(user, "pk", None), via="api")


class LoginThrottleBackend(AxesStandaloneBackend):  # type: ignore[misc]
    """django-axes' lockout check for logins that come with a request (the admin login form).

    A login without a request (`Client.login` in tests, scripts calling `authenticate`) has no
    address to throttle by; it passes on to the password check instead of failing outright.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        super().authenticate(request, username=username, password=password, **kwargs)
        return None
