"""Where the site's root, the admin's "View site" and a login without `next` lead."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.integration.pages import factories

pytestmark = pytest.mark.django_db


def test_root__staff__goes_to_the_experiment_list(client_for: Any, viewer: User) -> None:
    response = client_for(viewer).get("/")
    assert response.status_code == 302 and response["Location"] == "/experiments/"


def test_root__anonymous__login_then_the_experiment_list(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/experiments/"


def test_root__signed_in_but_not_staff__login_then_the_experiment_list(client: Client) -> None:
    client.force_login(User.objects.create_user("customer", "c@example.com", "pw-12345-x"))
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/experiments/"


def test_profile__any_visitor__redirected_to_the_experiment_list(client: Client) -> None:
    response = client.get("/accounts/profile/")
    assert response.status_code == 302 and response["Location"] == "/experiments/"


def test_admin_login__without_next__lands_on_the_experiment_list(client: Client) -> None:
    factories.staff_user("analyst")
    response = client.post("/admin/login/", {"username": "analyst", "password": "pw-12345-x"})
    assert response.status_code == 302 and response["Location"] == "/experiments/"
    assert client.get(response["Location"]).status_code == 200
