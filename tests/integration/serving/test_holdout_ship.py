"""Holdouts that hold: shipping an experiment in a holdout's scope serves the shipped variation
to everyone but the holdout's units, who keep the value from before, on /api/v1/evaluate, on
OFREP and in the GrowthBook payload as both GrowthBook SDKs (Python and JavaScript) evaluate it;
all three report each unit's arm of the holdout ("holdout:<key>", held-out or released), the
holdout readout's population. Ending the holdout releases them, audited."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.test import Client, RequestFactory
from django.urls import resolve
from growthbook import GrowthBook

from audit.models import AuditEntry
from audit.types import Actor
from base.models import Environment
from config.errors import Conflict, ValidationFailed
from experiments import services as experiment_services
from experiments.holdouts import holdout_end
from experiments.models import Experiment
from flags import services as flag_services
from flags.models import Flag, FlagState, Rule
from serving.exposures import buffer as exposure_buffer
from tests.integration.experiments.conftest import create_experiment, create_metrics
from tests.integration.serving.conftest import RECORDED, assert_ofrep, sdk_post
from traffic import services as traffic_services
from traffic.assignment.hashing import hash_v2
from traffic.models import Holdout

pytestmark = pytest.mark.django_db
JS = Path(__file__).resolve().parents[2] / "js"
UNITS = 2000
SHARE = 0.2
SEED = "growth-seed"


@pytest.fixture
def production(environments: dict[str, Environment]) -> Environment:
    return environments["production"]


@pytest.fixture
def shipped(actor: Actor, production: Environment) -> Environment:
    """A flag with a targeting rule for DE, an experiment in the holdout's scope, shipped."""
    create_metrics(actor, ["purchase"])
    traffic_services.holdout_create(actor=actor, key="growth", share=SHARE, seed=SEED)
    flag = flag_services.flag_create(
        actor=actor, key="checkout", value_type="string",
        variants=[{"key": "control", "value": "old"}, {"key": "treatment", "value": "new"},
                  {"key": "local", "value": "local"}],
    )
    flag_services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    flag_services.flag_rule_create(actor=actor, flag=flag, environment=production, kind="force", variant="local",
                                   condition={"country": "DE"})
    experiment = create_experiment(actor, flag, production, ["purchase"], holdout="growth")
    experiment_services.experiment_stop(actor=actor, experiment=experiment, decision="ship", variation="treatment")
    production.refresh_from_db()
    return production


def _ours(key: str, unit: str, **attributes: Any) -> dict[str, Any]:
    body = orjson.dumps({"context": {"targetingKey": unit, **attributes}, "track": False})
    request = RequestFactory().post("/api/v1/evaluate", body, content_type="application/json", HTTP_X_API_KEY=key)
    return dict(orjson.loads(resolve("/api/v1/evaluate").func(request).content)["flags"])


def _held(unit: str) -> bool:
    return hash_v2(SEED, unit) < SHARE


def _javascript(payload: dict[str, Any], units: list[str], tmp_path: Path) -> dict[str, Any]:
    if not (shutil.which("node") and (JS / "node_modules" / "@growthbook" / "growthbook").is_dir()):
        pytest.fail("the JavaScript SDK tests need node and `make js-deps` (npm ci in tests/js)")
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"payload": payload, "units": units, "features": ["checkout"]}))
    done = subprocess.run(["node", str(JS / "growthbook_eval.mjs"), str(path)], capture_output=True, text=True,
                          timeout=120, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_ship_in_holdout__held_out_units_keep_old_value__server_and_both_sdks_agree(
    client: Client, shipped: Environment, settings: Any, tmp_path: Path
) -> None:
    settings.SNAPSHOT_CHECK_INTERVAL = 60.0
    env = shipped
    state = FlagState.objects.get(flag__key="checkout", environment=env)
    assert state.default_variant == "treatment"
    payload = client.get(f"/api/features/{env.client_key}").json()
    feature = payload["features"]["checkout"]
    assert feature["defaultValue"] == "new"
    # The targeting rule first, the holdout's rule last: held-out units meet every rule they met before.
    assert feature["rules"][0]["force"] == "local"
    tracking, hold = feature["rules"][-2:]
    assert tracking["key"] == "holdout:growth" and [m["key"] for m in tracking["meta"]] == ["held-out", "released"]
    assert hold["force"] == "old"
    assert hold["filters"] == [{"seed": SEED, "ranges": [[0.0, SHARE]], "attribute": "id"}]
    units = [f"user-{i}" for i in range(UNITS)]
    js = _javascript(payload, units, tmp_path)
    viewed: list[tuple[str, str]] = []

    def seen(experiment: Any, result: Any, **_: Any) -> None:
        viewed.append((experiment.key, result.key))

    gb = GrowthBook(features=payload["features"], on_experiment_viewed=seen)
    held = 0
    mismatches: list[str] = []
    try:
        for i, unit in enumerate(units):
            expected = "old" if _held(unit) else "new"
            held += _held(unit)
            ours = _ours(env.client_key, unit)["checkout"]
            gb.set_attributes({"id": unit})
            viewed.clear()
            python_sdk = gb.get_feature_value("checkout", None)
            js_sdk = js[unit]["values"]["checkout"]
            if not ours["value"] == python_sdk == js_sdk == expected:
                mismatches.append(f"{unit}: expected {expected} ours {ours['value']} python {python_sdk} js {js_sdk}")
            arm = ["holdout:growth", "held-out" if _held(unit) else "released"]
            if viewed != [tuple(arm)] or js[unit]["viewed"] != [arm]:
                mismatches.append(f"{unit}: arm {arm}, python SDK viewed {viewed}, js SDK {js[unit]['viewed']}")
            if i < 20:
                through_client = sdk_post(client, "/api/v1/evaluate", {"context": {"targetingKey": unit},
                                                                        "track": False}, env.client_key)
                assert through_client.json()["flags"]["checkout"]["value"] == expected
                ofrep = sdk_post(client, "/ofrep/v1/evaluate/flags/checkout", {"context": {"targetingKey": unit}},
                                 env.client_key).json()
                assert_ofrep(ofrep, "serverEvaluationSuccess")
                assert ofrep["value"] == expected
        # Targeting that held before the ship holds for held-out units too.
        gb.set_attributes({"id": "user-0", "country": "DE"})
        assert gb.get_feature_value("checkout", None) == "local"
        assert _ours(env.client_key, "user-0", country="DE")["checkout"]["value"] == "local"
    finally:
        gb.destroy()
    assert not mismatches, "\n".join(mismatches[:20])
    assert 0.17 * UNITS < held < 0.23 * UNITS


def test_ship_twice_in_holdout__held_out_units_stay_before_both(
    actor: Actor, shipped: Environment, client: Client
) -> None:
    flag = Flag.objects.get(key="checkout")
    second = create_experiment(actor, flag, shipped, ["purchase"], key="checkout-second", holdout="growth",
                               variations=[{"key": "treatment", "weight": 0.5}, {"key": "local", "weight": 0.5}])
    experiment_services.experiment_stop(actor=actor, experiment=second, decision="ship", variation="local")
    rules = Rule.objects.filter(state__flag=flag, state__environment=shipped, holdout="growth")
    assert [(r.kind, r.variant) for r in rules] == [("force", "control")]
    shipped.refresh_from_db()
    for i in range(200):
        unit = f"user-{i}"
        assert _ours(shipped.client_key, unit)["checkout"]["value"] == ("old" if _held(unit) else "local")


def test_ship_outside_holdout_or_rollback__no_hold_rule(actor: Actor, production: Environment) -> None:
    create_metrics(actor, ["purchase"])
    flag = flag_services.flag_create(actor=actor, key="plain", value_type="string",
                                     variants=[{"key": "control", "value": "a"}, {"key": "treatment", "value": "b"}])
    flag_services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    traffic_services.holdout_create(actor=actor, key="other", share=0.1)
    plain = create_experiment(actor, flag, production, ["purchase"], key="no-holdout")
    experiment_services.experiment_stop(actor=actor, experiment=plain, decision="ship", variation="treatment")
    rolled = create_experiment(actor, flag, production, ["purchase"], key="rolled-back", holdout="other")
    experiment_services.experiment_stop(actor=actor, experiment=rolled, decision="rollback")
    assert not Rule.objects.filter(state__flag=flag).exists()


def test_holdout_end__releases_units_audited__then_refused_for_new_experiments(
    actor: Actor, shipped: Environment, client: Client
) -> None:
    holdout = Holdout.objects.get(key="growth")
    holdout_end(actor=actor, holdout=holdout)
    holdout.refresh_from_db()
    assert holdout.ended_at is not None
    assert not Rule.objects.filter(holdout="growth").exists()
    entry = AuditEntry.objects.filter(action="holdout.end", object_key="growth").get()
    before, after = entry.before or {}, entry.after or {}
    assert before["held_flags"] == ["checkout@production"] and before["ended_at"] is None
    assert after["held_flags"] == [] and after["ended_at"] is not None
    assert AuditEntry.objects.filter(action="flag.rule_delete", object_key="checkout").exists()
    shipped.refresh_from_db()
    payload = client.get(f"/api/features/{shipped.client_key}").json()
    assert all(rule.get("force") != "old" for rule in payload["features"]["checkout"]["rules"])
    for i in range(100):
        assert _ours(shipped.client_key, f"user-{i}")["checkout"]["value"] == "new"
    with pytest.raises(Conflict) as again:
        holdout_end(actor=actor, holdout=holdout)
    assert again.value.code == "holdout_ended"
    flag = Flag.objects.get(key="checkout")
    with pytest.raises(ValidationFailed) as joined:
        create_experiment(actor, flag, shipped, ["purchase"], key="late", holdout="growth", start=False)
    assert "holdout" in joined.value.details
    with pytest.raises(ValidationFailed) as rule:
        flag_services.flag_rule_create(actor=actor, flag=flag, environment=shipped, kind="experiment",
                                       variations=["control", "treatment"], weights=[0.5, 0.5], holdout="growth")
    assert "has ended" in rule.value.details["holdout"][0]


def test_holdout_end__refused_while_a_running_experiment_uses_it__nothing_changes(
    actor: Actor, shipped: Environment
) -> None:
    flag = Flag.objects.get(key="checkout")
    running = create_experiment(actor, flag, shipped, ["purchase"], key="still-running", holdout="growth")
    count = AuditEntry.objects.count()
    with pytest.raises(Conflict) as refused:
        holdout_end(actor=actor, holdout=Holdout.objects.get(key="growth"))
    assert refused.value.code == "holdout_in_use"
    assert refused.value.details == {"experiments": ["still-running"]}
    assert Holdout.objects.get(key="growth").ended_at is None
    assert Rule.objects.filter(holdout="growth", kind="force").count() == 1
    assert AuditEntry.objects.count() == count
    assert Experiment.objects.get(pk=running.pk).status == "running"


def test_evaluate_in_holdout_scope__server_reports_each_units_arm(
    client: Client, shipped: Environment
) -> None:
    env = shipped
    for i in range(50):
        body = {"context": {"targetingKey": f"user-{i}"}}
        assert sdk_post(client, "/api/v1/evaluate", body, env.client_key).status_code == 200
    sdk_post(client, "/ofrep/v1/evaluate/flags/checkout", {"context": {"targetingKey": "user-50"}}, env.client_key)
    assert exposure_buffer.flush()
    reported = sorted((e.unit_id, e.experiment, e.variation) for e in RECORDED)
    expected = sorted((f"user-{i}", "holdout:growth", "held-out" if _held(f"user-{i}") else "released")
                      for i in range(51))
    assert reported == expected
