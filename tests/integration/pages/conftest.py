"""Fixtures of the result-page tests: staff users of both roles and seeded experiments."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from experiments import ingestion
from experiments.models import Experiment
from tests.integration.pages import factories


@pytest.fixture(autouse=True)
def fresh_routes() -> Any:
    ingestion._routes_cache.clear()
    yield
    ingestion._routes_cache.clear()


@pytest.fixture
def analyst(db: Any) -> User:
    return factories.staff_user("analyst")


@pytest.fixture
def viewer(db: Any) -> User:
    return factories.staff_user("viewer", read_only=True)


@pytest.fixture
def client_for(client: Client) -> Any:
    def login(user: User) -> Client:
        client.force_login(user)
        return client

    return login


@pytest.fixture
def winner(db: Any) -> Experiment:
    return factories.seed(factories.winner_plan())


@pytest.fixture
def srm_experiment(db: Any) -> Experiment:
    return factories.seed(factories.srm_plan())
