"""The holdouts management API on PostgreSQL: list and read holdouts with their latest readout
results, ask for a readout now, end a holdout (audited, refused twice, reviewed where the
environment requires review), roles and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from audit.models import AuditEntry
from audit.types import Actor
from base.change_requests import environment_review_set
from base.models import ChangeRequest, Environment
from experiments.holdout_analyses import holdout_analysis_create
from experiments.holdout_readout import holdout_readout_run
from experiments.models import HoldoutAnalysis, HoldoutSnapshot
from flags import services as flag_services
from flags.models import Flag, Rule
from tests.integration.base.roles import read_only_user, token_client
from tests.integration.experiments.conftest import create_metrics, post_events, sdk_client
from traffic import services as traffic_services
from traffic.assignment.hashing import hash_v2
from traffic.models import Holdout

pytestmark = pytest.mark.django_db
SEED = "api-seed"
SHARE = 0.2


def _holdout(actor: Actor, production: Environment) -> tuple[Holdout, HoldoutAnalysis]:
    create_metrics(actor, ["purchase", "revenue"])
    holdout = traffic_services.holdout_create(actor=actor, key="growth", name="Growth holdout", share=SHARE,
                                              seed=SEED)
    analysis = holdout_analysis_create(
        actor=actor, holdout=holdout, environment=production, started_at=datetime.now(tz=UTC) - timedelta(days=10),
        metrics=[{"metric": "purchase", "role": "primary"}, {"metric": "revenue", "role": "secondary"}])
    return holdout, analysis


def _read_out(production: Environment, analysis: HoldoutAnalysis) -> HoldoutSnapshot:
    now = datetime.now(tz=UTC)
    items: list[dict[str, Any]] = []
    for i in range(600):
        unit = f"u{i}"
        arm = "held-out" if hash_v2(SEED, unit) < SHARE else "released"
        seen = now - timedelta(days=2, hours=i % 24)
        items.append({"id": f"x{i}", "type": "exposure", "unit_id": unit, "experiment": "holdout:growth",
                      "variation": arm, "timestamp": seen.isoformat()})
        if i % (3 if arm == "released" else 5) == 0:
            items.append({"id": f"p{i}", "type": "event", "unit_id": unit, "name": "purchase", "value": 20,
                          "timestamp": (seen + timedelta(hours=1)).isoformat()})
    assert post_events(sdk_client(production), items).json()["rejected"] == []
    snapshot = HoldoutSnapshot.objects.create(analysis=analysis, trigger="api")
    done = holdout_readout_run(snapshot_id=snapshot.pk)
    assert done is not None and done.status == "success", done and done.error
    return done


def _hold_rule(actor: Actor, flag: Flag, environment: Environment) -> Rule:
    return flag_services.flag_rule_create(actor=actor, flag=flag, environment=environment, kind=Rule.Kind.FORCE,
                                          variant="control", holdout="growth", description="held")


def test_holdouts_api__list_and_get__status_held_flags_and_latest_results_per_metric(
    read_client: APIClient, actor: Actor, production: Environment, checkout_flag: Flag,
) -> None:
    _, analysis = _holdout(actor, production)
    done = _read_out(production, analysis)
    _hold_rule(actor, checkout_flag, production)
    traffic_services.holdout_create(actor=actor, key="old", share=0.1)
    Holdout.objects.filter(key="old").update(ended_at=datetime.now(tz=UTC))

    listed = read_client.get("/api/v1/holdouts")
    assert listed.status_code == 200, listed.content
    assert [h["key"] for h in listed.json()["results"]] == ["growth", "old"]
    assert [h["key"] for h in read_client.get("/api/v1/holdouts?status=ended").json()["results"]] == ["old"]
    assert [h["key"] for h in read_client.get("/api/v1/holdouts?search=grow").json()["results"]] == ["growth"]

    body = read_client.get("/api/v1/holdouts/growth").json()
    assert (body["status"], body["share"], body["name"], body["ended_at"]) == ("active", SHARE, "Growth holdout", None)
    assert body["held_flags"] == ["checkout@production"]
    [readout] = body["readouts"]
    assert (readout["environment"], readout["pending"]) == ("production", False)
    assert readout["latest"]["id"] == done.pk and "metrics" not in readout["latest"]
    latest = readout["latest_success"]
    assert (latest["id"], latest["status"], latest["units"]) == (done.pk, "success", 600)
    purchase = next(m for m in latest["metrics"] if m["metric"] == "purchase")
    assert purchase["role"] == "primary" and [a["variation"] for a in purchase["arms"]] == ["held-out", "released"]
    [lift] = [c for c in purchase["comparisons"] if c["difference_type"] == "relative"]
    assert lift["variation"] == "released"
    assert lift["ci_low"] < lift["estimate"] < lift["ci_high"]
    assert 0 <= lift["p_value"] <= 1 and isinstance(lift["significant"], bool)


def test_holdouts_api__refresh__queued_per_environment_and_bad_input_refused(
    write_client: APIClient, actor: Actor, production: Environment, django_capture_on_commit_callbacks: Any,
) -> None:
    _, analysis = _holdout(actor, production)
    with django_capture_on_commit_callbacks(execute=False):
        response = write_client.post("/api/v1/holdouts/growth/refresh", {"environment": "production"}, format="json")
    assert response.status_code == 202, response.content
    [queued] = response.json()["queued"]
    assert queued["status"] == "queued" and HoldoutSnapshot.objects.get(pk=queued["id"]).analysis_id == analysis.pk
    # A readout already queued answers a second request.
    with django_capture_on_commit_callbacks(execute=False):
        again = write_client.post("/api/v1/holdouts/growth/refresh", {}, format="json")
    assert [s["id"] for s in again.json()["queued"]] == [queued["id"]]
    assert write_client.get("/api/v1/holdouts/growth").json()["readouts"][0]["pending"] is True

    assert write_client.post("/api/v1/holdouts/growth/refresh", {"environment": "staging"},
                             format="json").status_code == 404
    assert write_client.post("/api/v1/holdouts/nope/refresh", {}, format="json").status_code == 404
    unknown = write_client.post("/api/v1/holdouts/growth/refresh", {"phase": 2}, format="json")
    assert unknown.status_code == 400 and unknown.json()["code"] == "validation_error"
    assert write_client.get("/api/v1/holdouts?status=maybe").status_code == 400
    assert write_client.get("/api/v1/holdouts/nope").status_code == 404
    assert HoldoutSnapshot.objects.count() == 1


def test_holdouts_api__end__releases_the_held_flags_audited_and_refused_twice(
    write_client: APIClient, actor: Actor, production: Environment, checkout_flag: Flag,
) -> None:
    _holdout(actor, production)
    rule = _hold_rule(actor, checkout_flag, production)

    response = write_client.post("/api/v1/holdouts/growth/end", {}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ended" and body["ended_at"] is not None and body["held_flags"] == []
    assert not Rule.objects.filter(pk=rule.pk).exists()
    entry = AuditEntry.objects.get(action="holdout.end")
    assert entry.object_key == "growth" and entry.actor_label.startswith("boss")
    assert entry.before is not None and entry.after is not None
    assert entry.before["held_flags"] == ["checkout@production"] and entry.after["ended_at"] is not None
    again = write_client.post("/api/v1/holdouts/growth/end", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "holdout_ended"


def test_holdouts_api__end_in_a_reviewed_environment__change_request_applied_on_approval(
    write_client: APIClient, actor: Actor, production: Environment, checkout_flag: Flag,
) -> None:
    _holdout(actor, production)
    rule = _hold_rule(actor, checkout_flag, production)
    environment_review_set(actor=Actor.system(), environment=production, requires_review=True)

    response = write_client.post("/api/v1/holdouts/growth/end", {}, format="json")

    assert response.status_code == 202, response.content
    request = response.json()["change_request"]
    assert (request["operation"], request["environment"], request["object"]) == (
        "holdout.end", "production", {"type": "holdout", "key": "growth"})
    assert Holdout.objects.get(key="growth").ended_at is None and Rule.objects.filter(pk=rule.pk).exists()
    reviewer = token_client(User.objects.create_superuser("rita", "rita@example.com", "pw-rita-123"))
    done = reviewer.post(f"/api/v1/change-requests/{request['id']}/approve", {}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "applied", done.content
    assert Holdout.objects.get(key="growth").ended_at is not None and not Rule.objects.filter(pk=rule.pk).exists()
    assert ChangeRequest.objects.get().status == "applied"


def test_holdouts_api__end_without_held_flags__not_reviewed(
    write_client: APIClient, actor: Actor, production: Environment,
) -> None:
    _holdout(actor, production)
    environment_review_set(actor=Actor.system(), environment=production, requires_review=True)
    assert write_client.post("/api/v1/holdouts/growth/end", {}, format="json").status_code == 200
    assert not ChangeRequest.objects.exists()


def test_holdouts_api__roles__viewer_reads_only_changer_may_refresh_and_end(
    actor: Actor, production: Environment, checkout_flag: Flag, django_capture_on_commit_callbacks: Any,
) -> None:
    _holdout(actor, production)
    _hold_rule(actor, checkout_flag, production)
    viewer = token_client(read_only_user())
    assert viewer.get("/api/v1/holdouts/growth").status_code == 200
    for url in ("/api/v1/holdouts/growth/refresh", "/api/v1/holdouts/growth/end"):
        refused = viewer.post(url, {}, format="json")
        assert refused.status_code == 403 and refused.json()["details"] == {"action": "holdout.change"}, url
    assert Holdout.objects.get(key="growth").ended_at is None and not HoldoutSnapshot.objects.exists()

    changer = User.objects.create_user("pm", password="pw-pm-12345", is_staff=True)
    changer.user_permissions.set(Permission.objects.filter(codename__in=["view_holdout", "change_holdout"]))
    client = token_client(changer)
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post("/api/v1/holdouts/growth/refresh", {}, format="json").status_code == 202
    assert client.post("/api/v1/holdouts/growth/end", {}, format="json").status_code == 200
