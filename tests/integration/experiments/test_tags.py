"""Experiment tags through the services, the management API, the admin and the demo seed:
short lowercase slugs, normalised, at most 20 of at most 40 characters; bad input is a 400
that changes nothing."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEntry
from audit.types import Actor
from config.errors import ValidationFailed
from experiments import services
from experiments.models import Experiment
from experiments.validation import normalize_tags, tags_errors
from flags.models import Flag
from tests.integration.conftest_admin import errors_of, read_form
from tests.integration.experiments.conftest import post_experiment

pytestmark = pytest.mark.django_db


def test_tags__normalised__trimmed_lowercased_deduplicated() -> None:
    assert normalize_tags([" Checkout", "checkout", "Q3-Growth "]) == ["checkout", "q3-growth"]
    assert tags_errors(["checkout", "q3-growth", "a_b", "x" * 40]) == []
    assert normalize_tags("checkout") == "checkout"  # not a list: left for the check to reject


def test_experiment_create__tags__stored_normalised_and_returned(write_client: APIClient, api_ready: None) -> None:
    response = post_experiment(write_client, tags=["Checkout", " q3-growth", "checkout"])
    assert response.status_code == 201, response.json()
    assert response.json()["tags"] == ["checkout", "q3-growth"]
    assert Experiment.objects.get().tags == ["checkout", "q3-growth"]


def test_experiment_create__no_tags__empty_list(write_client: APIClient, api_ready: None) -> None:
    assert post_experiment(write_client).json()["tags"] == []


@pytest.mark.parametrize("tags", [
    "checkout",  # not a list
    ["has space"],
    ["a--b"],
    ["-leading"],
    ["ümlaut"],
    [""],
    ["x" * 41],
    [f"t{i}" for i in range(21)],
    [1, 2],
    {"tag": "checkout"},
])
def test_experiment_create__bad_tags__400_and_nothing_written(
    write_client: APIClient, api_ready: None, tags: Any
) -> None:
    response = post_experiment(write_client, tags=tags)
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "validation_error" and "tags" in body["details"]
    assert not Experiment.objects.exists()
    assert not AuditEntry.objects.filter(object_type="experiment").exists()


def test_experiment_update__tags__set_and_reject_keeps_old(write_client: APIClient, api_ready: None) -> None:
    post_experiment(write_client, tags=["checkout"])
    write_client.post("/api/v1/experiments/checkout-test/start")
    response = write_client.patch("/api/v1/experiments/checkout-test", {"tags": ["pricing", "q3"]}, format="json")
    assert response.status_code == 200 and response.json()["tags"] == ["pricing", "q3"]
    response = write_client.patch("/api/v1/experiments/checkout-test", {"tags": ["Not OK!"]}, format="json")
    assert response.status_code == 400
    assert "'not ok!' is not a tag" in response.json()["details"]["tags"][0]
    assert Experiment.objects.get().tags == ["pricing", "q3"]
    response = write_client.patch("/api/v1/experiments/checkout-test", {"tags": []}, format="json")
    assert response.status_code == 200 and response.json()["tags"] == []


def test_experiment_list_api__tag_filter(write_client: APIClient, read_client: APIClient, api_ready: None) -> None:
    post_experiment(write_client, "a", tags=["checkout"])
    post_experiment(write_client, "b", tags=["pricing", "checkout"])
    post_experiment(write_client, "c")
    keys = {e["key"] for e in read_client.get("/api/v1/experiments?tag=checkout").json()["results"]}
    assert keys == {"a", "b"}
    assert read_client.get("/api/v1/experiments?tag=nope").json()["count"] == 0


def test_services__bad_tags__validation_failed(actor: Actor, api_ready: None, checkout_flag: Flag) -> None:
    environment = checkout_flag.states.first().environment  # type: ignore[union-attr]
    with pytest.raises(ValidationFailed) as failure:
        services.experiment_create(actor=actor, key="direct", flag=checkout_flag, environment=environment,
                                   tags=["ok", "not ok"])
    assert "tags" in failure.value.details
    assert not Experiment.objects.exists()


def test_schema__tags_documented(read_client: APIClient) -> None:
    schema = read_client.get("/api/schema/?format=json").json()
    holders = [c for c in schema["components"]["schemas"].values()
               if "tags" in c.get("properties", {}) and "hypothesis" in c.get("properties", {})]
    assert len(holders) >= 3  # output, create and update
    assert all(c["properties"]["tags"]["type"] == "array" for c in holders)
    params = {p["name"] for p in schema["paths"]["/api/v1/experiments"]["get"]["parameters"]}
    assert "tag" in params


def test_admin__tags__comma_separated_through_the_service(
    admin_client: Client, write_client: APIClient, api_ready: None
) -> None:
    post_experiment(write_client, tags=["checkout"])
    experiment = Experiment.objects.get()
    url = reverse("admin:experiments_experiment_change", args=[experiment.pk])
    data = read_form(admin_client, url, "experiment_form")
    assert data["tags"] == "checkout"
    data["tags"] = "Checkout, q3-growth"
    response = admin_client.post(url, data)
    assert response.status_code == 302, errors_of(response)
    experiment.refresh_from_db()
    assert experiment.tags == ["checkout", "q3-growth"]
    data["tags"] = "fine, not fine"
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert any("is not a tag" in e for e in errors_of(response))
    experiment.refresh_from_db()
    assert experiment.tags == ["checkout", "q3-growth"]
    listing = admin_client.get(reverse("admin:experiments_experiment_changelist")).content.decode()
    assert "checkout, q3-growth" in listing


def test_seed_experiments__demo__tagged_with_a_target(db: Any) -> None:
    call_command("seed_experiments", "--users", "200", "--no-readout", stdout=io.StringIO())
    demo = Experiment.objects.get(key="checkout-redesign")
    assert demo.tags == ["checkout", "conversion", "demo"]
    assert demo.target_mde == pytest.approx(0.12)
    # A demo seeded before tags existed gets them on the next run, and nothing else changes.
    Experiment.objects.filter(pk=demo.pk).update(tags=[])
    call_command("seed_experiments", stdout=io.StringIO())
    demo.refresh_from_db()
    assert demo.tags == ["checkout", "conversion", "demo"]
