"""The Bayesian engine in the product: chosen per experiment through the API (with the
project's default when not named), refused in clear 4xx errors where it cannot apply, and
read out end to end from events in PostgreSQL: the stored posterior, chance to win, risk and
heterogeneity tests equal the engine called directly on the stored sums."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

import stats
from audit.models import AuditEntry
from audit.types import Actor
from base.models import Environment
from experiments import project, services
from experiments.models import Experiment, Metric, ProjectSettings, ResultSnapshot
from flags.models import Flag
from tests.integration.experiments.conftest import create_experiment, post_experiment
from tests.integration.pages import factories

pytestmark = [pytest.mark.django_db]

KIND: dict[str, stats.MetricType] = {"conversion": "binomial", "mean": "mean", "count": "mean"}


# Choosing the engine ---------------------------------------------------------------------------


def test_api__bayesian_with_prior__stored_and_shown(write_client: APIClient, api_ready: None) -> None:
    response = post_experiment(write_client, stats_engine="bayesian", prior_enabled=True, prior_mean=0.0,
                               prior_stddev=0.3)
    assert response.status_code == 201, response.json()
    analysis = response.json()["analysis"]
    assert (analysis["stats_engine"], analysis["prior_enabled"], analysis["prior_stddev"]) == ("bayesian", True, 0.3)
    changed = write_client.patch("/api/v1/experiments/checkout-test", {"stats_engine": "frequentist"}, format="json")
    assert changed.status_code == 200 and changed.json()["analysis"]["stats_engine"] == "frequentist"


def test_api__no_engine_named__project_default_then_service_default(write_client: APIClient, api_ready: None,
                                                                    actor: Actor) -> None:
    with override_settings(STATS_ENGINE_DEFAULT="frequentist"):
        assert post_experiment(write_client, key="a").json()["analysis"]["stats_engine"] == "frequentist"
        project.project_settings_update(actor=actor, stats_engine_default="bayesian")
        assert post_experiment(write_client, key="b").json()["analysis"]["stats_engine"] == "bayesian"
        # A new default never changes an existing experiment.
        assert Experiment.objects.get(key="a").stats_engine == "frequentist"
        project.project_settings_update(actor=actor, stats_engine_default="")
    with override_settings(STATS_ENGINE_DEFAULT="bayesian"):
        assert post_experiment(write_client, key="c").json()["analysis"]["stats_engine"] == "bayesian"
    assert AuditEntry.objects.filter(action="project.settings.update").count() == 2


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"stats_engine": "bayes"}, "stats_engine", "is not a valid choice"),
    ({"stats_engine": "bayesian", "sequential": True}, "sequential", "no sequential test"),
    ({"stats_engine": "bayesian", "correction": "holm"}, "correction", "does not give"),
    ({"prior_stddev": 0}, "prior_stddev", "between 0.001 and 10"),
    ({"prior_stddev": "wide"}, "prior_stddev", "valid number"),
    ({"prior_mean": 3}, "prior_mean", "between -1 and 1"),
    ({"prior_mean": True}, "prior_mean", "valid number"),
])
def test_api__bad_engine_settings__400_naming_the_field_and_nothing_written(
    write_client: APIClient, api_ready: None, body: dict[str, Any], field: str, words: str
) -> None:
    response = post_experiment(write_client, **body)
    assert response.status_code == 400, response.json()
    details = response.json()["details"]
    assert field in details and words in " ".join(details[field]), details
    assert not Experiment.objects.exists()


def test_api__project_default_bayesian__sequential_refused_in_words(write_client: APIClient, api_ready: None,
                                                                    actor: Actor) -> None:
    project.project_settings_update(actor=actor, stats_engine_default="bayesian")
    response = post_experiment(write_client, sequential=True)
    assert response.status_code == 400
    assert "frequentist engine" in " ".join(response.json()["details"]["sequential"])
    created = post_experiment(write_client, sequential=True, stats_engine="frequentist")
    assert created.status_code == 201
    # Switching an existing sequential experiment to the Bayesian engine is refused the same way.
    switched = write_client.patch("/api/v1/experiments/checkout-test", {"stats_engine": "bayesian"}, format="json")
    assert switched.status_code == 400 and "sequential" in switched.json()["details"]
    assert Experiment.objects.get(key="checkout-test").stats_engine == "frequentist"


def test_project_settings_api__read_change_and_refuse(write_client: APIClient, read_client: APIClient) -> None:
    assert read_client.get("/api/v1/project/settings").json() == {
        "stats_engine_default": "", "stats_engine_effective": "frequentist"}
    changed = write_client.patch("/api/v1/project/settings", {"stats_engine_default": "bayesian"}, format="json")
    assert changed.status_code == 200 and changed.json()["stats_engine_effective"] == "bayesian"
    for body in ({"stats_engine_default": "bayes"}, {"north_star": "revenue"}, {"stats_engine_default": 1}):
        refused = write_client.patch("/api/v1/project/settings", body, format="json")
        assert refused.status_code == 400, (body, refused.json())
    assert read_client.patch("/api/v1/project/settings", {"stats_engine_default": ""}, format="json").status_code == 403
    assert project.project_engine_default() == "bayesian"
    assert AuditEntry.objects.filter(action="project.settings.update").count() == 1


def test_project_settings__bad_value__refused(actor: Actor) -> None:
    from config.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        project.project_settings_update(actor=actor, stats_engine_default="bayes")
    with pytest.raises(ValidationFailed):
        project.project_settings_update(actor=actor, north_star="x")
    assert project.project_settings_get().stats_engine_default == ""
    assert ProjectSettings.objects.count() == 1


# The readout ------------------------------------------------------------------------------------


def _traffic(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    now = datetime.now(tz=UTC)
    items: list[dict[str, Any]] = []
    for i in range(n):
        arm = i % 2
        country = ("DE", "FR", "US")[int(rng.integers(0, 3))]
        seen = now - timedelta(hours=2 + int(rng.integers(0, 40)))
        items.append({"id": f"x{i}", "type": "exposure", "unit_id": f"u{i}", "experiment": "bayes-test",
                      "variation": ("control", "treatment")[arm], "timestamp": seen.isoformat(),
                      "attributes": {"country": country, "platform": ("ios", "web")[i % 3 == 0]}})
        after = (seen + timedelta(minutes=20)).isoformat()
        rate = 0.10 if arm == 0 else (0.22 if country == "DE" else 0.11)
        if rng.random() < rate:
            items.append({"id": f"p{i}", "type": "event", "unit_id": f"u{i}", "name": "purchase",
                          "value": round(float(rng.gamma(2.0, 15.0)), 2), "timestamp": after})
    return items


def test_readout__bayesian__stored_numbers_equal_the_engine_on_the_stored_sums(
    actor: Actor, environments: dict[str, Environment], checkout_flag: Flag, metrics: dict[str, Metric]
) -> None:
    production = environments["production"]
    experiment = create_experiment(
        actor, checkout_flag, production, ["purchase", "revenue"], key="bayes-test", stats_engine="bayesian",
        prior_enabled=True, prior_mean=0.0, prior_stddev=0.3, cuped=False, slice_attributes=["country", "platform"],
        min_sample_per_arm=100,
    )
    items = _traffic(6000, seed=3)
    for k in range(0, len(items), 1000):
        result = services.events_ingest(environment=production, items=items[k:k + 1000])
        assert not result.rejected, result.rejected[:3]

    snapshot = services.readout_run(experiment_id=experiment.pk)

    assert snapshot is not None and snapshot.status == ResultSnapshot.Status.SUCCESS, snapshot and snapshot.error
    assert snapshot.schema_version == 3 and snapshot.settings["engine"] == "bayesian"
    for metric in snapshot.metrics:
        assert metric["headline"] == "bayesian" and "sequential" not in metric
        arms = tuple(stats.VariationData(**arm) for arm in snapshot.inputs["metrics"][metric["key"]]["overall"])
        for dtype in ("relative", "absolute"):
            direct = stats.analyze(stats.AnalysisInput(
                metric=KIND[metric["kind"]], variations=arms, difference_type=dtype, weights=(0.5, 0.5),
                engine="bayesian", prior_mean=0.0, prior_stddev=0.3, prior_type="relative",
            )).comparisons[0]
            stored = next(c for c in metric["bayesian"] if c["difference_type"] == dtype)
            assert stored["estimate"] == pytest.approx(direct.estimate, rel=1e-12)
            assert [stored["ci_low"], stored["ci_high"]] == pytest.approx([direct.ci_low, direct.ci_high], rel=1e-12)
            assert stored["chance_to_win"] == pytest.approx(direct.chance_to_win, rel=1e-12)
            assert stored["risk"] == pytest.approx(list(direct.risk or ()), rel=1e-9)
            assert stored["p_value"] is None
        # Heterogeneity: the purchase lift is twice as large in DE.
        tests = {(h["variation"], h["attribute"]): h for h in metric.get("heterogeneity", [])}
        assert set(tests) == {("treatment", "country"), ("treatment", "platform")}
        family = []
        for attribute in ("country", "platform"):
            values = snapshot.inputs["metrics"][metric["key"]]["slices"][attribute]
            found = {value: stats.analyze(stats.AnalysisInput(
                metric=KIND[metric["kind"]], variations=tuple(stats.VariationData(**a) for a in arms_),
                difference_type="relative", weights=(0.5, 0.5))).comparisons[0] for value, arms_ in values.items()}
            order = [v["value"] for v in tests[("treatment", attribute)]["values"]]
            family.append(stats.AttributeEstimates(attribute, tuple(order),
                                                   tuple(found[v].estimate for v in order),
                                                   tuple(found[v].standard_error for v in order)))
        expected = stats.heterogeneity_family(family, alpha=0.05)
        for attribute, direct_test in zip(("country", "platform"), expected, strict=True):
            stored_test = tests[("treatment", attribute)]
            assert direct_test.test is not None
            assert stored_test["q"] == pytest.approx(direct_test.test.q, rel=1e-9)
            assert stored_test["p_value_adjusted"] == pytest.approx(direct_test.p_value_adjusted, rel=1e-9)
            assert stored_test["significant"] == direct_test.significant
    purchase = next(m for m in snapshot.metrics if m["key"] == "purchase")
    country = next(h for h in purchase["heterogeneity"] if h["attribute"] == "country")
    assert country["significant"] and [v["value"] for v in country["values"] if v["differs"]] == ["DE"]


# Admin ------------------------------------------------------------------------------------------


def test_admin__bayesian_experiment__created_refused_with_sequential_and_project_default_changed(
    admin_client: Any, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric]
) -> None:
    from django.urls import reverse

    from tests.integration.conftest_admin import errors_of
    from tests.integration.experiments.test_admin import _experiment_data

    add = reverse("admin:experiments_experiment_add")
    refused = admin_client.post(add, _experiment_data(production, checkout_flag, metrics["purchase"],
                                                      stats_engine="bayesian", sequential="on"))
    assert refused.status_code == 200 and any("no sequential test" in e for e in errors_of(refused))
    assert not Experiment.objects.exists()
    created = admin_client.post(add, _experiment_data(production, checkout_flag, metrics["purchase"],
                                                      stats_engine="bayesian", prior_enabled="on",
                                                      prior_mean="0.02", prior_stddev="0.1"))
    assert created.status_code == 302, errors_of(created)
    experiment = Experiment.objects.get(key="admin-test")
    assert (experiment.stats_engine, experiment.prior_enabled, experiment.prior_mean, experiment.prior_stddev) == (
        "bayesian", True, 0.02, 0.1)

    settings_row = project.project_settings_get()
    change = reverse("admin:experiments_projectsettings_change", args=[settings_row.pk])
    assert admin_client.post(change, {"stats_engine_default": "bayesian"}).status_code == 302
    assert project.project_engine_default() == "bayesian"
    assert AuditEntry.objects.filter(action="project.settings.update", via="admin").count() == 1
    # Left out of the form, the engine of a new experiment is the project's default.
    data = _experiment_data(production, checkout_flag, metrics["purchase"], key="admin-default")
    assert admin_client.post(add, data).status_code == 302
    assert Experiment.objects.get(key="admin-default").stats_engine == "bayesian"


# Exports ----------------------------------------------------------------------------------------


def test_exports__bayesian_readout__chance_to_win_risk_credible_interval_and_heterogeneity(
    actor: Actor, environments: dict[str, Environment], checkout_flag: Flag, metrics: dict[str, Metric],
    client: Client,
) -> None:
    production = environments["production"]
    experiment = create_experiment(
        actor, checkout_flag, production, ["purchase", "revenue"], key="bayes-test", stats_engine="bayesian",
        cuped=False, slice_attributes=["country", "platform"], min_sample_per_arm=100,
    )
    items = _traffic(6000, seed=3)
    for k in range(0, len(items), 1000):
        assert not services.events_ingest(environment=production, items=items[k:k + 1000]).rejected
    snapshot = services.readout_run(experiment_id=experiment.pk)
    assert snapshot is not None and snapshot.status == ResultSnapshot.Status.SUCCESS, snapshot and snapshot.error
    stored = next(m for m in snapshot.metrics if m["key"] == "purchase")
    stored_lift = next(c for c in stored["bayesian"] if c["difference_type"] == "relative")
    stored_country = next(h for h in stored["heterogeneity"] if h["attribute"] == "country")
    client.force_login(factories.staff_user("pm", read_only=True))

    response = client.get("/experiments/bayes-test/export.csv")

    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    [lift] = [r for r in rows if (r["metric"], r["analysis"], r["difference_type"], r["slice_attribute"]) == (
        "purchase", "bayesian", "relative", "")]
    assert lift["interval"] == "credible" and lift["p_value"] == ""
    assert float(lift["chance_to_win"]) == pytest.approx(stored_lift["chance_to_win"])
    assert [float(lift["risk_control"]), float(lift["risk_variation"])] == pytest.approx(stored_lift["risk"])
    assert [float(lift["ci_low"]), float(lift["ci_high"])] == pytest.approx(
        [stored_lift["ci_low"], stored_lift["ci_high"]])
    # Slice rows read with the headline (Bayesian) analysis: credible intervals, a chance and risks.
    slice_row = next(r for r in rows if r["slice_attribute"] == "country" and r["analysis"] == "bayesian"
                     and r["metric"] == "purchase")
    assert slice_row["interval"] == "credible" and slice_row["risk_variation"] != ""
    # The heterogeneity test of the purchase lift across countries, then each country.
    tests = [r for r in rows if r["analysis"] == "heterogeneity" and r["metric"] == "purchase"
             and r["slice_attribute"] == "country"]
    [attribute] = [r for r in tests if r["slice_value"] == ""]
    assert float(attribute["statistic"]) == pytest.approx(stored_country["q"])
    assert int(attribute["degrees_of_freedom"]) == stored_country["degrees_of_freedom"]
    assert float(attribute["p_value"]) == pytest.approx(stored_country["p_value"])
    assert float(attribute["p_value_adjusted"]) == pytest.approx(stored_country["p_value_adjusted"])
    assert attribute["flagged"] == "True" and attribute["variation"] == "treatment"
    values = {r["slice_value"]: r for r in tests if r["slice_value"]}
    assert set(values) == {"DE", "FR", "US"}
    assert [key for key, r in values.items() if r["flagged"] == "True"] == ["DE"]
    assert {r["analysis"] for r in rows if r["metric"] == "revenue"} >= {"bayesian", "heterogeneity"}
    assert all(len(r) == len(rows[0]) for r in rows)

    body = client.get("/experiments/bayes-test/export.json").json()
    purchase = next(m for m in body["metrics"] if m["key"] == "purchase")
    exported = next(c for c in purchase["bayesian"] if c["difference_type"] == "relative")
    assert exported["risk"] == pytest.approx(stored_lift["risk"])
    assert exported["chance_to_win"] == pytest.approx(stored_lift["chance_to_win"])
    assert body["settings"]["engine"] == "bayesian"
    country = next(h for h in purchase["heterogeneity"] if h["attribute"] == "country")
    assert country["significant"] and [v["value"] for v in country["values"] if v["differs"]] == ["DE"]
    assert country["p_value_adjusted"] == pytest.approx(stored_country["p_value_adjusted"])
