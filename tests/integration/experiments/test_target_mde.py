"""The planned target effect (`target_mde`) through the services, the management API, its
schema and the admin: a relative effect above 0 and at most 10; bad input is a 400 that
changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEntry
from audit.types import Actor
from config.errors import ValidationFailed
from experiments import services
from experiments.models import Experiment
from flags.models import Flag
from tests.integration.conftest_admin import errors_of, read_form
from tests.integration.experiments.conftest import post_experiment

pytestmark = pytest.mark.django_db


def test_experiment_create__target_mde__stored_and_returned(write_client: APIClient, api_ready: None) -> None:
    response = post_experiment(write_client, target_mde=0.05)
    assert response.status_code == 201, response.json()
    assert response.json()["target_mde"] == pytest.approx(0.05)
    assert Experiment.objects.get().target_mde == pytest.approx(0.05)
    assert write_client.get("/api/v1/experiments/checkout-test").json()["target_mde"] == pytest.approx(0.05)


def test_experiment_create__no_target_mde__null(write_client: APIClient, api_ready: None) -> None:
    response = post_experiment(write_client)
    assert response.status_code == 201
    assert response.json()["target_mde"] is None


@pytest.mark.parametrize("value", [0, -0.05, 10.5, 1e9, "five percent", True, [0.05]])
def test_experiment_create__bad_target_mde__400_and_nothing_written(
    write_client: APIClient, api_ready: None, value: Any
) -> None:
    response = post_experiment(write_client, target_mde=value)
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "validation_error"
    assert "target_mde" in body["details"]
    assert not Experiment.objects.exists()
    assert not AuditEntry.objects.filter(object_type="experiment").exists()


def test_experiment_update__target_mde__set_clear_and_reject(write_client: APIClient, api_ready: None) -> None:
    post_experiment(write_client)
    assert write_client.post("/api/v1/experiments/checkout-test/start").status_code == 200
    # A planning field: a running experiment may change it, in the same phase.
    response = write_client.patch("/api/v1/experiments/checkout-test", {"target_mde": 10}, format="json")
    assert response.status_code == 200 and response.json()["target_mde"] == 10
    assert len(response.json()["phases"]) == 1
    response = write_client.patch("/api/v1/experiments/checkout-test", {"target_mde": 12}, format="json")
    assert response.status_code == 400
    assert "at most 10" in response.json()["details"]["target_mde"][0]
    assert Experiment.objects.get().target_mde == 10
    response = write_client.patch("/api/v1/experiments/checkout-test", {"target_mde": None}, format="json")
    assert response.status_code == 200 and response.json()["target_mde"] is None
    entry = AuditEntry.objects.filter(action="experiment.update").order_by("-id").first()
    assert entry is not None and "target_mde" in str(entry.diff)


def test_experiment_update__target_mde_on_stopped__allowed(write_client: APIClient, api_ready: None) -> None:
    post_experiment(write_client)
    write_client.post("/api/v1/experiments/checkout-test/start")
    write_client.post("/api/v1/experiments/checkout-test/stop", {"decision": "rollback"}, format="json")
    response = write_client.patch("/api/v1/experiments/checkout-test", {"target_mde": 0.02}, format="json")
    assert response.status_code == 200 and response.json()["target_mde"] == pytest.approx(0.02)


def test_services__bad_target_mde__validation_failed(actor: Actor, api_ready: None, checkout_flag: Flag) -> None:
    experiment = services.experiment_create(
        actor=actor, key="direct", flag=checkout_flag, environment=checkout_flag.states.first().environment,  # type: ignore[union-attr]
        target_mde=0.1,
    )
    with pytest.raises(ValidationFailed) as failure:
        services.experiment_update(actor=actor, experiment=experiment, target_mde=float("nan"))
    assert "target_mde" in failure.value.details
    experiment.refresh_from_db()
    assert experiment.target_mde == pytest.approx(0.1)


def test_schema__target_mde_documented(read_client: APIClient) -> None:
    schema = read_client.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    # By content, not by component name: the create and update inputs, and the experiment output.
    holders = {name: c["properties"]["target_mde"] for name, c in components.items()
               if "target_mde" in c.get("properties", {})}
    inputs = [p for name, p in holders.items() if "hypothesis" in components[name]["properties"]
              and "status" not in components[name]["properties"]]
    outputs = [p for name, p in holders.items() if "status" in components[name]["properties"]]
    assert len(inputs) >= 2 and len(outputs) >= 1
    for prop in [*inputs, *outputs]:
        assert prop["type"] == "number" and prop["nullable"] is True and "0.05" in prop["description"]
    paths = schema["paths"]
    assert "/api/v1/experiments" in paths and "/api/v1/experiments/{key}" in paths


def test_admin__target_mde__saved_through_the_service_and_rejected_when_bad(
    admin_client: Client, write_client: APIClient, api_ready: None
) -> None:
    post_experiment(write_client)
    experiment = Experiment.objects.get()
    url = reverse("admin:experiments_experiment_change", args=[experiment.pk])
    data = read_form(admin_client, url, "experiment_form")
    assert "target_mde" in data
    data["target_mde"] = "0.07"
    response = admin_client.post(url, data)
    assert response.status_code == 302, errors_of(response)
    experiment.refresh_from_db()
    assert experiment.target_mde == pytest.approx(0.07)
    data["target_mde"] = "0"
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert any("above 0" in e for e in errors_of(response))
    experiment.refresh_from_db()
    assert experiment.target_mde == pytest.approx(0.07)
