"""Who is asking: management API tokens (read or write scope) or a staff session, and the
throttle on admin logins."""

from typing import TYPE_CHECKING, Any

from axes.backends import AxesStandaloneBackend
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from audit.types import Actor
from base.keys import TOKEN_PREFIX, token_digest
from base.models import ApiToken

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
    """Reads need a read or write token (or staff session); writes need write scope."""

    message = "This token cannot change configuration (read scope)."

    def has_permission(self, request: Request, view: "APIView") -> bool:
        user: Any = request.user
        if user is None or not user.is_authenticated:
            return False
        token = request.auth
        if isinstance(token, ApiToken):
            return request.method in permissions.SAFE_METHODS or token.scope == ApiToken.Scope.WRITE
        if not user.is_staff:
            return False
        return request.method in permissions.SAFE_METHODS or user.has_perm("flags.change_flag")


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
