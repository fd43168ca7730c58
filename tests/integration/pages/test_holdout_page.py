"""The holdout result page: the held-out users against everyone else on the holdout's metrics,
from the stored readout, with what the holdout holds and a refresh; roles enforced."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from base.models import Environment
from experiments.management.commands.seed_growth import HOLDOUT, seed_growth
from experiments.models import HoldoutSnapshot
from flags import services as flag_services
from tests.integration.pages.factories import ACTOR

pytestmark = pytest.mark.django_db
URL = f"/holdouts/{HOLDOUT}/production/"


@pytest.fixture
def seeded(db: Any) -> Environment:
    environment = flag_services.environment_create(actor=ACTOR, key="production")
    seed_growth(environment=environment, users=3000)
    return environment


def _user(name: str, *codenames: str) -> User:
    user = User.objects.create_user(name, f"{name}@example.com", "pw-12345-x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def test_holdout_page__shows_held_out_against_released_and_what_is_held(client: Client, seeded: Environment) -> None:
    client.force_login(_user("growth", "view_holdout", "change_holdout", "view_experiment"))
    page = client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Holding" in html and "everyone else against the held-out units" in html
    assert "onboarding-tour" in html and "one-click-reorder" in html and "smart-search" in html
    assert 'data-metric="orders" data-variation="released"' in html
    snapshot = HoldoutSnapshot.objects.get(status="success")
    released = snapshot.readout["variations"][1]
    assert released["key"] == "released" and f"{snapshot.units:,}" in html
    # The toggles switch among the stored analyses.
    sequential = client.get(URL + "?analysis=sequential")
    assert sequential.status_code == 200 and 'data-value="sequential"' in sequential.content.decode()
    queued = client.post(URL + "refresh")
    assert queued.status_code == 302
    assert HoldoutSnapshot.objects.filter(status="queued", trigger="page").count() == 1


def test_holdout_page__roles__viewer_cannot_refresh_and_strangers_are_refused(
    client: Client, seeded: Environment
) -> None:
    client.force_login(_user("viewer", "view_holdout"))
    html = client.get(URL).content.decode()
    assert 'id="refresh"' not in html
    assert client.post(URL + "refresh").status_code == 403
    assert not HoldoutSnapshot.objects.filter(trigger="page").exists()
    client.force_login(_user("stranger", "view_flag"))
    assert client.get(URL).status_code == 403
    assert client.get("/holdouts/nope/production/").status_code in (403, 404)
