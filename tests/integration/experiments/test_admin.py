"""The product manager's flow in the admin: metric, experiment with variations and metrics,
review, start, results panel, stop with a decision, archive; all through the services."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from base.models import Environment
from experiments.models import Experiment, Metric, ResultSnapshot
from flags.models import Flag, FlagState, Rule
from tests.integration.conftest_admin import add_inline_form, errors_of, management, read_form, text_of

pytestmark = pytest.mark.django_db


def _experiment_data(environment: Environment, flag: Flag, metric: Metric, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": "admin-test", "name": "Shorter checkout", "hypothesis": "Fewer steps, more orders.",
        "description": "", "owner": "pm", "environment": str(environment.pk), "flag": str(flag.pk),
        "hash_attribute": "id", "seed": "", "coverage": "1.0", "condition": "{}", "layer": "", "range_start": "",
        "range_end": "", "holdout": "", "alpha": "0.05", "difference_type": "relative", "sequential_tuning": "5000",
        "cuped": "on", "cuped_lookback_days": "14", "correction": "none", "min_sample_per_arm": "100",
        "slice_attributes": '["country"]',
        **management("variations"), **management("experiment_metrics"),
    }
    add_inline_form(data, "variations", {"key": "control", "name": "", "weight": "0.5"})
    add_inline_form(data, "variations", {"key": "treatment", "name": "", "weight": "0.5"})
    add_inline_form(data, "experiment_metrics", {"metric": str(metric.pk), "role": "primary"})
    data.update(fields)
    return data


def test_metric_add__admin_form__created_and_audited(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:experiments_metric_add"), {
        "key": "signup", "name": "Signed up", "description": "", "kind": "conversion", "event_name": "signup",
        "denominator_event": "", "funnel_steps": "[]", "retention_day": "", "window_hours": "72",
        "capping": "none", "capping_value": "", "direction": "higher", "owner": "",
    })
    assert response.status_code == 302, errors_of(response)
    assert Metric.objects.get(key="signup").window_hours == 72
    assert AuditEntry.objects.filter(action="metric.create", via="admin").count() == 1


def test_metric_add__ratio_without_denominator__form_error_and_nothing_written(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:experiments_metric_add"), {
        "key": "ctr", "name": "", "description": "", "kind": "ratio", "event_name": "click",
        "denominator_event": "", "funnel_steps": "[]", "retention_day": "", "window_hours": "",
        "capping": "none", "capping_value": "", "direction": "higher", "owner": "",
    })
    assert response.status_code == 200
    assert any("event name" in e for e in errors_of(response))
    assert not Metric.objects.exists()


def test_experiment_admin__create_review_start_stop_ship__flag_follows(
    admin_client: Client, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric]
) -> None:
    response = admin_client.post(reverse("admin:experiments_experiment_add"),
                                 _experiment_data(production, checkout_flag, metrics["purchase"]))
    assert response.status_code == 302, errors_of(response)
    experiment = Experiment.objects.get(key="admin-test")
    assert [v.key for v in experiment.variations.all()] == ["control", "treatment"]
    change_url = reverse("admin:experiments_experiment_change", args=[experiment.pk])
    page = text_of(admin_client.get(change_url))
    assert "Ready to start?" in page and "Yes" in page
    start_url = reverse("admin:experiments_experiment_start_detail", args=[experiment.pk])
    refresh_url = reverse("admin:experiments_experiment_refresh_detail", args=[experiment.pk])
    html = admin_client.get(change_url).content.decode()
    assert start_url in html and refresh_url not in html  # a draft can be started, has nothing to read out

    started = admin_client.post(reverse("admin:experiments_experiment_start_detail", args=[experiment.pk]))
    assert started.status_code == 302
    experiment.refresh_from_db()
    assert experiment.status == "running"
    assert Rule.objects.get().experiment_key == "admin-test"
    html = admin_client.get(change_url).content.decode()
    assert start_url not in html and refresh_url in html  # running: no second start

    refresh = admin_client.post(reverse("admin:experiments_experiment_refresh_detail", args=[experiment.pk]))
    assert refresh.status_code == 302
    assert ResultSnapshot.objects.filter(experiment=experiment, trigger="admin").count() == 1

    data = read_form(admin_client, change_url, "experiment_form")
    data.update({"decision": "ship", "ship_variation": "treatment", "decision_note": "It wins."})
    stopped = admin_client.post(change_url, data)
    assert stopped.status_code == 302, errors_of(stopped)
    experiment.refresh_from_db()
    assert experiment.status == "stopped" and experiment.shipped_variation == "treatment"
    assert FlagState.objects.get(flag=checkout_flag, environment=production).default_variant == "treatment"
    assert not Rule.objects.exists()
    actions = list(AuditEntry.objects.filter(object_type="experiment").values_list("action", flat=True))
    assert {"experiment.create", "experiment.start", "experiment.stop"} <= set(actions)

    admin_client.post(reverse("admin:experiments_experiment_archive_detail", args=[experiment.pk]))
    experiment.refresh_from_db()
    assert experiment.status == "archived"


def test_experiment_admin__weights_not_summing_to_one__start_refused_with_reason(
    admin_client: Client, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric]
) -> None:
    data = _experiment_data(production, checkout_flag, metrics["purchase"])
    data["variations-1-weight"] = "0.2"
    assert admin_client.post(reverse("admin:experiments_experiment_add"), data).status_code == 302
    experiment = Experiment.objects.get(key="admin-test")
    page = text_of(admin_client.get(reverse("admin:experiments_experiment_change", args=[experiment.pk])))
    assert "Weights must sum to 1" in page
    response = admin_client.post(reverse("admin:experiments_experiment_start_detail", args=[experiment.pk]),
                                 follow=True)
    assert "cannot start" in text_of(response)
    experiment.refresh_from_db()
    assert experiment.status == "draft"


def test_experiment_admin__unknown_variant__error_on_the_variation_row(
    admin_client: Client, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric]
) -> None:
    data = _experiment_data(production, checkout_flag, metrics["purchase"])
    data["variations-1-key"] = "purple"
    response = admin_client.post(reverse("admin:experiments_experiment_add"), data)
    assert response.status_code == 200
    assert any("no variant 'purple'" in e for e in errors_of(response))
    assert not Experiment.objects.exists()


def _metric_form(**fields: str) -> dict[str, str]:
    return {"key": "ltv-30", "name": "Revenue", "description": "", "kind": "ltv", "event_name": "purchase",
            "denominator_event": "", "funnel_steps": "[]", "retention_day": "", "ltv_day": "30", "window_hours": "",
            "capping": "none", "capping_value": "", "direction": "higher", "owner": "", **fields}


def test_metric_add__ltv_at_day_30__created_and_listed_with_its_days(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:experiments_metric_add"), _metric_form())
    assert response.status_code == 302, errors_of(response)
    metric = Metric.objects.get(key="ltv-30")
    assert (metric.kind, metric.ltv_day, metric.window_hours) == ("ltv", 30, None)
    listing = text_of(admin_client.get(reverse("admin:experiments_metric_changelist")))
    assert "purchase values by day 30" in listing and "30 days" in listing


@pytest.mark.parametrize(("fields", "words"), [
    ({"ltv_day": "366"}, "less than or equal to 365"),
    ({"ltv_day": ""}, "day N (1 to 365)"),
    ({"kind": "mean", "ltv_day": "", "window_hours": "8761"}, "less than or equal to 8760"),
    ({"window_hours": "720"}, "leave window_hours empty"),
])
def test_metric_add__day_or_window_beyond_the_limits__form_error_and_nothing_written(
    admin_client: Client, fields: dict[str, str], words: str,
) -> None:
    response = admin_client.post(reverse("admin:experiments_metric_add"), _metric_form(**fields))
    assert response.status_code == 200
    assert any(words in e for e in errors_of(response)), errors_of(response)
    assert not Metric.objects.exists()
