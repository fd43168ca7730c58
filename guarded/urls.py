from django.urls import path

from guarded import apis

_BASE = "flags/<str:key>/environments/<str:env>/guarded-rollouts"

urlpatterns = [
    path(_BASE, apis.GuardedRolloutListApi.as_view(), name="guarded-rollout-list"),
    path(f"{_BASE}/<int:rollout_id>", apis.GuardedRolloutDetailApi.as_view(), name="guarded-rollout-detail"),
    *(path(f"{_BASE}/<int:rollout_id>/{name}", apis.GuardedRolloutActionApi.as_view(operation=name),
           name=f"guarded-rollout-{name}") for name in ("pause", "resume", "rollback")),
]
