"""Fixtures of the result-view tests: a staff user and a logged-in client."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.integration.pages import factories


@pytest.fixture
def analyst(db: Any) -> User:
    return factories.staff_user("analyst")


@pytest.fixture
def analyst_client(client: Client, analyst: User) -> Client:
    client.force_login(analyst)
    return client
