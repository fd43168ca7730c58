"""Who may do what: the one place that answers "may this user do X".

Every interface asks here: the admin (`base.admin_base`), the pages (`pages.access`) and the
management API (`base.authentication`, for a staff session or for a token's owner). The
vocabulary is `Action`: viewing and changing each kind of object, and the operations on flags
and experiments. `RULES` says which Django model permissions grant each action; a user is
allowed an action when they are an active staff member holding one of those permissions
(superusers hold them all). Nothing is cached between requests: revoking a permission or
deactivating a user takes effect at the next request, for their sessions and tokens alike.

Roles per environment: a user may hold one role in an environment (`EnvironmentRole`: viewer,
editor, publisher or admin). For an action about something in that environment (a flag's state
and rules there, an experiment, a change request, the environment itself) the role decides and
replaces the user's general rights, in both directions: a viewer of production may not change
it whatever their model permissions, an editor of staging may change staging without any. With
no role in the environment, the general rights (model permissions) decide, as they do for every
action that concerns no single environment (creating a flag, a metric, a token...). Callers pass
the `environment` whenever the object lives in one; a call without it asks about the action in
general, and roles in single environments never grant that.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from config.errors import Forbidden

if TYPE_CHECKING:
    from base.models import Environment

__all__ = ["ENVIRONMENT_ACTIONS", "ROLE_ACTIONS", "RULES", "Action", "Role", "Rule", "allowed", "environment_role",
           "is_staff_member", "require"]


class Action(StrEnum):
    FLAG_VIEW = "flag.view"
    FLAG_CREATE = "flag.create"
    FLAG_CHANGE = "flag.change"
    FLAG_ARCHIVE = "flag.archive"
    FLAG_KILL_SWITCH = "flag.kill_switch"
    FLAG_RAMP = "flag.ramp"
    SEGMENT_VIEW = "segment.view"
    SEGMENT_CREATE = "segment.create"
    SEGMENT_CHANGE = "segment.change"
    SEGMENT_DELETE = "segment.delete"
    ATTRIBUTE_VIEW = "attribute.view"
    ATTRIBUTE_CREATE = "attribute.create"
    ATTRIBUTE_CHANGE = "attribute.change"
    ATTRIBUTE_DELETE = "attribute.delete"
    ENVIRONMENT_VIEW = "environment.view"
    ENVIRONMENT_CREATE = "environment.create"
    ENVIRONMENT_CHANGE = "environment.change"
    EXPERIMENT_VIEW = "experiment.view"
    EXPERIMENT_CREATE = "experiment.create"
    EXPERIMENT_CHANGE = "experiment.change"
    EXPERIMENT_START = "experiment.start"
    EXPERIMENT_STOP = "experiment.stop"
    EXPERIMENT_ARCHIVE = "experiment.archive"
    EXPERIMENT_REFRESH = "experiment.refresh"
    DATA_SOURCE_VIEW = "data_source.view"
    DATA_SOURCE_CREATE = "data_source.create"
    DATA_SOURCE_CHANGE = "data_source.change"
    DATA_SOURCE_DELETE = "data_source.delete"
    DATA_SOURCE_TEST = "data_source.test"
    EXPERIMENT_RAMP = "experiment.ramp"
    METRIC_VIEW = "metric.view"
    METRIC_CREATE = "metric.create"
    METRIC_CHANGE = "metric.change"
    METRIC_ARCHIVE = "metric.archive"
    LAYER_VIEW = "layer.view"
    LAYER_CREATE = "layer.create"
    LAYER_CHANGE = "layer.change"
    LAYER_DELETE = "layer.delete"
    HOLDOUT_VIEW = "holdout.view"
    HOLDOUT_CREATE = "holdout.create"
    HOLDOUT_CHANGE = "holdout.change"
    HOLDOUT_DELETE = "holdout.delete"
    TOKEN_VIEW = "token.view"  # noqa: S105 - an action's name, not a secret
    TOKEN_CREATE = "token.create"  # noqa: S105 - an action's name, not a secret
    TOKEN_CHANGE = "token.change"  # noqa: S105 - an action's name, not a secret
    AUDIT_VIEW = "audit.view"
    SIGN_IN_VIEW = "sign_in.view"
    SIGN_IN_RESET = "sign_in.reset"
    CHANGE_APPROVE = "change.approve"
    CHANGE_CANCEL = "change.cancel"
    WEBHOOK_VIEW = "webhook.view"
    WEBHOOK_CREATE = "webhook.create"
    WEBHOOK_CHANGE = "webhook.change"
    PROJECT_SETTINGS_VIEW = "project_settings.view"
    PROJECT_SETTINGS_CHANGE = "project_settings.change"

    @property
    def writes(self) -> bool:
        """Whether the action changes anything (a read-scope token may do only those that do not)."""
        return RULES[self].writes


@dataclass(frozen=True, slots=True)
class Rule:
    """What an action is, in words for refusals, and the model permissions that each grant it."""

    description: str
    granted_by: tuple[str, ...]
    writes: bool = True


def _view(what: str, app: str, model: str) -> Rule:
    # As in Django's admin, the right to change a kind of object includes seeing it.
    return Rule(f"see {what}", (f"{app}.view_{model}", f"{app}.change_{model}"), writes=False)


def _needs(description: str, permission: str) -> Rule:
    return Rule(description, (permission,))


RULES: dict[Action, Rule] = {
    Action.FLAG_VIEW: _view("flags", "flags", "flag"),
    Action.FLAG_CREATE: _needs("create flags", "flags.add_flag"),
    Action.FLAG_CHANGE: _needs("change flags, their variants and targeting rules", "flags.change_flag"),
    Action.FLAG_ARCHIVE: _needs("archive or restore flags", "flags.change_flag"),
    Action.FLAG_KILL_SWITCH: _needs("turn flags on or off and choose what they serve in an environment",
                                    "flags.change_flag"),
    Action.FLAG_RAMP: _needs("schedule or stop rollout ramps", "flags.change_flag"),
    Action.SEGMENT_VIEW: _view("segments", "flags", "segment"),
    Action.SEGMENT_CREATE: _needs("create segments", "flags.add_segment"),
    Action.SEGMENT_CHANGE: _needs("change segments", "flags.change_segment"),
    Action.SEGMENT_DELETE: _needs("delete segments", "flags.delete_segment"),
    Action.ATTRIBUTE_VIEW: _view("attribute definitions", "flags", "attributedefinition"),
    Action.ATTRIBUTE_CREATE: _needs("define attributes", "flags.add_attributedefinition"),
    Action.ATTRIBUTE_CHANGE: _needs("change attribute definitions", "flags.change_attributedefinition"),
    Action.ATTRIBUTE_DELETE: _needs("delete attribute definitions", "flags.delete_attributedefinition"),
    Action.ENVIRONMENT_VIEW: _view("environments", "base", "environment"),
    Action.ENVIRONMENT_CREATE: _needs("create environments", "base.add_environment"),
    Action.ENVIRONMENT_CHANGE: _needs("change environments or rotate their SDK keys", "base.change_environment"),
    Action.EXPERIMENT_VIEW: _view("experiments and their results", "experiments", "experiment"),
    Action.EXPERIMENT_CREATE: _needs("create experiments", "experiments.add_experiment"),
    Action.EXPERIMENT_CHANGE: _needs("change experiments", "experiments.change_experiment"),
    Action.EXPERIMENT_START: _needs("start experiments", "experiments.change_experiment"),
    Action.EXPERIMENT_STOP: _needs("stop experiments", "experiments.change_experiment"),
    Action.EXPERIMENT_ARCHIVE: _needs("archive experiments", "experiments.change_experiment"),
    Action.EXPERIMENT_REFRESH: _needs("refresh experiment results", "experiments.change_experiment"),
    Action.DATA_SOURCE_VIEW: _view("data sources", "experiments", "datasource"),
    Action.DATA_SOURCE_CREATE: _needs("add data sources", "experiments.add_datasource"),
    Action.DATA_SOURCE_CHANGE: _needs("change data sources", "experiments.change_datasource"),
    Action.DATA_SOURCE_DELETE: _needs("delete data sources", "experiments.delete_datasource"),
    # A test connects and runs the queries: it costs the warehouse, so it takes the right to change.
    Action.DATA_SOURCE_TEST: _needs("test data sources (connect and run their queries)",
                                    "experiments.change_datasource"),
    Action.EXPERIMENT_RAMP: _needs("ramp experiments (raise coverage now or on a schedule, change the split)",
                                   "experiments.change_experiment"),
    Action.METRIC_VIEW: _view("metrics", "experiments", "metric"),
    Action.METRIC_CREATE: _needs("create metrics", "experiments.add_metric"),
    Action.METRIC_CHANGE: _needs("change metrics", "experiments.change_metric"),
    Action.METRIC_ARCHIVE: _needs("archive or restore metrics", "experiments.change_metric"),
    Action.LAYER_VIEW: _view("layers", "traffic", "layer"),
    Action.LAYER_CREATE: _needs("create layers", "traffic.add_layer"),
    Action.LAYER_CHANGE: _needs("change layers", "traffic.change_layer"),
    Action.LAYER_DELETE: _needs("delete layers", "traffic.delete_layer"),
    Action.HOLDOUT_VIEW: _view("holdouts", "traffic", "holdout"),
    Action.HOLDOUT_CREATE: _needs("create holdouts", "traffic.add_holdout"),
    Action.HOLDOUT_CHANGE: _needs("change holdouts", "traffic.change_holdout"),
    Action.HOLDOUT_DELETE: _needs("delete holdouts", "traffic.delete_holdout"),
    Action.TOKEN_VIEW: _view("API tokens", "base", "apitoken"),
    Action.TOKEN_CREATE: _needs("create API tokens", "base.add_apitoken"),
    Action.TOKEN_CHANGE: _needs("revoke API tokens", "base.change_apitoken"),
    Action.AUDIT_VIEW: Rule("read the audit log", ("audit.view_auditentry",), writes=False),
    # django-axes' records of admin sign-ins: attempts (and the lockouts they cause) and logs.
    Action.SIGN_IN_VIEW: Rule("see sign-in attempts, lockouts and logs", (
        "axes.view_accessattempt", "axes.view_accesslog", "axes.view_accessfailurelog",
        "axes.change_accessattempt", "axes.change_accesslog", "axes.change_accessfailurelog"), writes=False),
    Action.SIGN_IN_RESET: _needs("clear sign-in attempts, lockouts and logs", "axes.delete_accessattempt"),
    Action.CHANGE_APPROVE: _needs("approve and apply reviewed changes", "base.publish_environment"),
    # Authors withdraw their own change requests (the service checks whose it is).
    Action.CHANGE_CANCEL: Rule("withdraw change requests", (
        "flags.change_flag", "flags.change_segment", "experiments.change_experiment", "base.publish_environment")),
    Action.WEBHOOK_VIEW: _view("webhooks and their deliveries", "alerts", "webhook"),
    Action.WEBHOOK_CREATE: _needs("create webhooks", "alerts.add_webhook"),
    Action.WEBHOOK_CHANGE: _needs("change webhooks", "alerts.change_webhook"),
    Action.PROJECT_SETTINGS_VIEW: _view("the project's settings", "experiments", "projectsettings"),
    Action.PROJECT_SETTINGS_CHANGE: _needs("change the project's settings (the default statistics engine)",
                                           "experiments.change_projectsettings"),
}


class Role(StrEnum):
    """The roles one environment grants (the same names as `EnvironmentRole.Role`)."""

    VIEWER = "viewer"
    EDITOR = "editor"
    PUBLISHER = "publisher"
    ADMIN = "admin"


_SEE = frozenset({Action.FLAG_VIEW, Action.SEGMENT_VIEW, Action.ENVIRONMENT_VIEW, Action.EXPERIMENT_VIEW,
                  Action.METRIC_VIEW})
_EDIT = frozenset({Action.FLAG_CHANGE, Action.FLAG_KILL_SWITCH, Action.FLAG_RAMP, Action.EXPERIMENT_CHANGE,
                   Action.EXPERIMENT_START, Action.EXPERIMENT_STOP, Action.EXPERIMENT_ARCHIVE,
                   Action.EXPERIMENT_REFRESH, Action.EXPERIMENT_RAMP, Action.CHANGE_CANCEL})

# What each role may do in its environment; each role includes the ones before it.
ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: _SEE,
    Role.EDITOR: _SEE | _EDIT,
    Role.PUBLISHER: _SEE | _EDIT | {Action.CHANGE_APPROVE},
    Role.ADMIN: _SEE | _EDIT | {Action.CHANGE_APPROVE, Action.ENVIRONMENT_CHANGE},
}

# The actions a role in an environment decides when they are asked about that environment.
ENVIRONMENT_ACTIONS: frozenset[Action] = ROLE_ACTIONS[Role.ADMIN]


def is_staff_member(user: Any) -> bool:
    """Signed in, active and staff: the condition of every action (a token acts as its owner)."""
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def environment_role(user: Any, environment: Environment) -> Role | None:
    """The role `user` holds in `environment`, if any (read now: revoking takes effect at once)."""
    from base.models import EnvironmentRole

    name = EnvironmentRole.objects.filter(user_id=user.pk, environment_id=environment.pk).values_list(
        "role", flat=True).first()
    return Role(name) if name is not None else None


def allowed(user: Any, action: Action, *, environment: Environment | None = None) -> bool:
    """Whether `user` may do `action` now (about `environment` when the action concerns one)."""
    if not is_staff_member(user):
        return False
    if user.is_superuser:
        return True
    if environment is not None and action in ENVIRONMENT_ACTIONS:
        role = environment_role(user, environment)
        if role is not None:
            return action in ROLE_ACTIONS[role]
    return any(user.has_perm(permission) for permission in RULES[action].granted_by)


def require(user: Any, action: Action, *, environment: Environment | None = None) -> None:
    """Refuse with `Forbidden` (403) unless `user` may do `action`; the refusal names the action."""
    if allowed(user, action, environment=environment):
        return
    where = f" in {environment.key}" if environment is not None else ""
    raise Forbidden(f"Your role does not allow you to {RULES[action].description}{where}.",
                    details={"action": action.value})
