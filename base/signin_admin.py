"""Admin of the sign-in records kept by django-axes (attempts, lockouts, logs): axes' own lists,
with their permissions and their one action asked of `base.permissions` like every other admin.
axes' registration is off (`AXES_ENABLE_ADMIN`); `base.admin` registers these instead.
"""

from __future__ import annotations

from typing import Any

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from base.admin_base import AdminRoles, ModelAdmin, requires
from base.permissions import Action

SIGN_IN_ROLES = AdminRoles(view=Action.SIGN_IN_VIEW, delete=Action.SIGN_IN_RESET)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(ModelAdmin[AccessAttempt], axes_admin.AccessAttemptAdmin):  # type: ignore[misc]
    roles = SIGN_IN_ROLES

    @admin.action(description="Clean up expired attempts")
    @requires(Action.SIGN_IN_RESET)
    def cleanup_expired_attempts(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        # axes dates the clean-up from the sign-in it is checking, which an admin request is not.
        request.axes_attempt_time = getattr(request, "axes_attempt_time", None)  # type: ignore[attr-defined]
        super().cleanup_expired_attempts(request, queryset)


@admin.register(AccessLog)
class AccessLogAdmin(ModelAdmin[AccessLog], axes_admin.AccessLogAdmin):  # type: ignore[misc]
    roles = SIGN_IN_ROLES


@admin.register(AccessFailureLog)
class AccessFailureLogAdmin(ModelAdmin[AccessFailureLog], axes_admin.AccessFailureLogAdmin):  # type: ignore[misc]
    roles = SIGN_IN_ROLES
