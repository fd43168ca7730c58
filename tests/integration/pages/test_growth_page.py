"""The growth page and the north star: level over time, shipped lifts raw and corrected, their
sum beside the holdout's measured lift with the gap in words, running experiments; the north
star through the API (validated, audited, roles)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEntry
from base.models import Environment
from experiments.growth import north_star_get
from experiments.management.commands.seed_growth import seed_growth
from experiments.models import NorthStar
from flags import services as flag_services
from tests.integration.pages.factories import ACTOR

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(db: Any) -> Environment:
    environment = flag_services.environment_create(actor=ACTOR, key="production")
    seed_growth(environment=environment, users=3000)
    return environment


def test_growth_page__sum_beside_measured_with_words_and_running(client: Client, seeded: Environment) -> None:
    user = User.objects.create_user("pm", "pm@example.com", "pw-12345-x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_experiment"]))
    client.force_login(user)
    page = client.get("/holdouts/growth/production/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'class="level-line"' in html
    assert 'data-experiment="onboarding-tour"' in html and 'data-experiment="one-click-reorder"' in html
    assert 'class="running-row" data-experiment="smart-search"' in html
    assert "Sum of shipped lifts" in html and "Measured by the holdout" in html
    assert "The shipped lifts add up to" in html and "growth-h2" in html


def test_growth_page__no_north_star__says_how_to_choose_one(admin_client: Client) -> None:
    flag_services.environment_create(actor=ACTOR, key="production")
    html = admin_client.get("/holdouts/growth/production/").content.decode()
    assert 'id="no-north-star"' in html
    assert admin_client.get("/holdouts/growth/nowhere/").status_code == 404


def test_north_star_api__validated_audited_and_roles(write_client: APIClient, read_client: APIClient,
                                                    seeded: Environment) -> None:
    assert read_client.get("/api/v1/north-star").json() == {"metric": "orders", "input_metrics": []}
    before = AuditEntry.objects.count()
    bad = write_client.put("/api/v1/north-star", {"metric": "nope", "input_metrics": ["orders", "orders"]},
                           format="json")
    assert bad.status_code == 400
    assert set(bad.json()["details"]) >= {"metric"}
    unknown = write_client.put("/api/v1/north-star", {"metric": "orders", "extra": 1}, format="json")
    assert unknown.status_code == 400
    assert AuditEntry.objects.count() == before
    assert read_client.put("/api/v1/north-star", {"metric": "orders"}, format="json").status_code == 403
    ok = write_client.put("/api/v1/north-star", {"metric": "orders", "input_metrics": []}, format="json")
    assert ok.status_code == 200, ok.json()
    assert AuditEntry.objects.filter(action="project.north_star").exists()
    row = north_star_get()
    assert row is not None and row.metric.key == "orders" and NorthStar.objects.count() == 1


def test_seed_growth_command__seeds_once(db: Any) -> None:
    from io import StringIO

    from django.core.management import call_command

    from experiments.models import Experiment, HoldoutSnapshot

    flag_services.environment_create(actor=ACTOR, key="production")
    call_command("seed_growth", "--users", "600", stdout=StringIO())
    again = StringIO()
    call_command("seed_growth", "--users", "600", stdout=again)
    assert "'created': False" in again.getvalue()
    assert Experiment.objects.filter(decision="ship").count() == 2
    assert HoldoutSnapshot.objects.filter(status="success").count() == 1
