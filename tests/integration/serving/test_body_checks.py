"""Bodies the service refuses before evaluating: a NUL character (400 in OFREP's shape) and
bodies above Django's upload limit, which still get the SDK endpoints' own 413."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.integration.serving.conftest import Catalog

pytestmark = pytest.mark.django_db
PATHS = ["/ofrep/v1/evaluate/flags/new-checkout", "/ofrep/v1/evaluate/flags", "/api/v1/evaluate"]


@pytest.mark.parametrize("path", PATHS)
def test_sdk__body_above_the_upload_limit__413(client: Client, catalog: Catalog, path: str) -> None:
    body = b'{"context": {"targetingKey": "u", "pad": "' + b"x" * 1_200_000 + b'"}}'
    response = client.generic("POST", path, body, content_type="application/json",
                              HTTP_AUTHORIZATION=f"Bearer {catalog.client_key}")
    assert response.status_code == 413


@pytest.mark.parametrize("path", PATHS)
def test_sdk__nul_in_context__400_and_evaluation_goes_on(client: Client, catalog: Catalog, path: str) -> None:
    headers = {"Authorization": f"Bearer {catalog.client_key}"}
    bad = client.post(path, {"context": {"targetingKey": "u\u0000"}}, content_type="application/json",
                      headers=headers)
    assert bad.status_code == 400
    good = client.post(path, {"context": {"targetingKey": "u"}}, content_type="application/json", headers=headers)
    assert good.status_code == 200
