"""Metric windows up to 365 days and the LTV kind through the management API: the limits,
their 400s naming the field, and what the catalog stores."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from experiments.models import Metric

pytestmark = pytest.mark.django_db

YEAR_HOURS = 24 * 365


def _post(client: APIClient, **body: Any) -> Any:
    return client.post("/api/v1/metrics", {"key": "m", **body}, format="json")


def test_metric_create__window_of_365_days__201(write_client: APIClient) -> None:
    response = _post(write_client, kind="mean", event_name="order", window_hours=YEAR_HOURS)
    assert response.status_code == 201, response.json()
    assert response.json()["window_hours"] == YEAR_HOURS
    assert Metric.objects.get(key="m").window_hours == YEAR_HOURS


@pytest.mark.parametrize("window", [YEAR_HOURS + 1, 0, -5, 10**9])
def test_metric_create__window_outside_1_to_8760_hours__400_naming_the_field(
    write_client: APIClient, window: int
) -> None:
    response = _post(write_client, kind="mean", event_name="order", window_hours=window)
    assert response.status_code == 400, response.json()
    assert "window_hours" in response.json()["details"]
    assert not Metric.objects.exists()


def test_metric_update__window_beyond_365_days__400_and_unchanged(write_client: APIClient) -> None:
    assert _post(write_client, kind="count", event_name="order", window_hours=72).status_code == 201
    response = write_client.patch("/api/v1/metrics/m", {"window_hours": YEAR_HOURS + 24}, format="json")
    assert response.status_code == 400
    assert "window_hours" in response.json()["details"]
    assert Metric.objects.get(key="m").window_hours == 72
    ok = write_client.patch("/api/v1/metrics/m", {"window_hours": YEAR_HOURS}, format="json")
    assert ok.status_code == 200 and ok.json()["window_hours"] == YEAR_HOURS


@pytest.mark.parametrize("day", [1, 7, 30, 90, 365])
def test_metric_create__ltv_at_day_n__201_with_its_day(write_client: APIClient, day: int) -> None:
    response = _post(write_client, kind="ltv", event_name="purchase", ltv_day=day, capping="percentile",
                     capping_value=0.99)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["kind"], body["ltv_day"], body["window_hours"], body["retention_day"]) == ("ltv", day, None, None)
    assert body["capping"] == "percentile"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_name": "purchase"}, "ltv_day"),
        ({"event_name": "purchase", "ltv_day": 0}, "ltv_day"),
        ({"event_name": "purchase", "ltv_day": 366}, "ltv_day"),
        ({"ltv_day": 30}, "event_name"),
        ({"event_name": "purchase", "ltv_day": 30, "window_hours": 720}, "window_hours"),
        ({"event_name": "purchase", "ltv_day": 30, "capping": "percentile", "capping_value": 2}, "capping_value"),
    ],
)
def test_metric_create__invalid_ltv__400_naming_the_field(
    write_client: APIClient, body: dict[str, Any], field: str
) -> None:
    response = _post(write_client, kind="ltv", **body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["details"], response.json()
    assert not Metric.objects.exists()


def test_metric_update__mean_to_ltv__window_cleared_and_ltv_day_kept_only_for_ltv(write_client: APIClient) -> None:
    assert _post(write_client, kind="mean", event_name="purchase", window_hours=336).status_code == 201
    changed = write_client.patch("/api/v1/metrics/m", {"kind": "ltv", "ltv_day": 90}, format="json")
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["ltv_day"], changed.json()["window_hours"]) == (90, None)
    # An LTV metric's window is its day N.
    refused = write_client.patch("/api/v1/metrics/m", {"window_hours": 48}, format="json")
    assert refused.status_code == 400 and "window_hours" in refused.json()["details"]
    back = write_client.patch("/api/v1/metrics/m", {"kind": "mean"}, format="json")
    assert back.status_code == 200 and back.json()["ltv_day"] is None
