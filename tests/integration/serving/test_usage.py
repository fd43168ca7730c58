"""Last evaluation of each flag per environment: noted in memory by the evaluation endpoints,
written in one forward-only statement per flush, shown on the flag page and in the API."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from audit.types import Actor
from base.models import Environment
from flags.models import EnvironmentUsage, FlagUsage
from serving.usage import UsageRecorder
from serving.usage import recorder as usage
from tests.integration.serving.conftest import Catalog, sdk_post

pytestmark = pytest.mark.django_db
A = Actor(label="tester", via="system")


def _times(environment: Environment) -> dict[str, Any]:
    return dict(
        FlagUsage.objects.filter(environment=environment).values_list("flag__key", "last_evaluated_at")
    )


def test_evaluate__no_write_per_request__flush_records_every_flag(client: Client, catalog: Catalog) -> None:
    before = timezone.now()
    for i in range(5):
        response = sdk_post(client, "/api/v1/evaluate", {"context": {"targetingKey": f"u{i}"}}, catalog.client_key)
        assert response.status_code == 200
    assert not FlagUsage.objects.exists()  # nothing written while serving
    assert usage.flush()
    times = _times(catalog.environment)
    assert set(times) == set(catalog.flags)
    assert all(before - timedelta(seconds=1) <= t <= timezone.now() for t in times.values())
    assert usage.pending() == 0


def test_evaluate__some_flags__only_those_recorded(client: Client, catalog: Catalog) -> None:
    body = {"context": {"targetingKey": "u1"}, "flags": ["pricing", "ratio"]}
    assert sdk_post(client, "/api/v1/evaluate", body, catalog.server_key).status_code == 200
    usage.flush()
    assert set(_times(catalog.environment)) == {"pricing", "ratio"}


def test_ofrep__single_and_bulk__recorded(client: Client, catalog: Catalog) -> None:
    context = {"context": {"targetingKey": "u1"}}
    assert sdk_post(client, "/ofrep/v1/evaluate/flags/new-checkout", context, catalog.server_key).status_code == 200
    usage.flush()
    assert set(_times(catalog.environment)) == {"new-checkout"}
    first = sdk_post(client, "/ofrep/v1/evaluate/flags", context, catalog.client_key)
    assert first.status_code == 200
    # A revalidation answered with 304 still evaluated every flag.
    again = sdk_post(client, "/ofrep/v1/evaluate/flags", context, catalog.client_key,
                     HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    usage.flush()
    assert set(_times(catalog.environment)) == set(catalog.flags)


def test_sdk_payload__fetch_time_per_environment__not_an_evaluation(client: Client, catalog: Catalog) -> None:
    assert client.get(f"/api/features/{catalog.client_key}").status_code == 200
    usage.flush()
    fetched = EnvironmentUsage.objects.get(environment=catalog.environment).payload_fetched_at
    assert timezone.now() - fetched < timedelta(seconds=30)
    assert not FlagUsage.objects.exists()


def test_flush__forward_only(catalog: Catalog) -> None:
    env = catalog.environment.pk
    now = time.time()
    usage.evaluated(env, ["pricing"], at=now - 60)
    usage.payload_fetched(env, at=now - 60)
    usage.flush()
    usage.evaluated(env, ["pricing"], at=now - 3600)  # a slower process flushing late
    usage.payload_fetched(env, at=now - 3600)
    usage.flush()
    stored = FlagUsage.objects.get(flag__key="pricing").last_evaluated_at.timestamp()
    assert stored == pytest.approx(now - 60, abs=0.01)
    fetched = EnvironmentUsage.objects.get(environment_id=env).payload_fetched_at.timestamp()
    assert fetched == pytest.approx(now - 60, abs=0.01)
    usage.evaluated(env, ["pricing"], at=now)
    usage.flush()
    assert FlagUsage.objects.get(flag__key="pricing").last_evaluated_at.timestamp() == pytest.approx(now, abs=0.01)


def test_flush__one_statement__unknown_keys_ignored(catalog: Catalog, django_assert_num_queries: Any) -> None:
    usage.evaluated(catalog.environment.pk, ["pricing", "ratio", "no-such-flag"])
    usage.evaluated(987654, ["pricing"])  # an environment deleted since
    usage.payload_fetched(catalog.environment.pk)
    with django_assert_num_queries(1):
        assert usage.flush()
    assert set(_times(catalog.environment)) == {"pricing", "ratio"}
    with django_assert_num_queries(0):
        assert usage.flush()  # nothing noted: no statement


def test_flush__database_down__kept_and_written_later_while_serving_goes_on(
    client: Client, catalog: Catalog
) -> None:
    body = {"context": {"targetingKey": "u1"}, "flags": ["pricing"]}
    with mock.patch.object(UsageRecorder, "_write", side_effect=OperationalError("connection refused")):
        assert sdk_post(client, "/api/v1/evaluate", body, catalog.client_key).status_code == 200
        assert not usage.flush()
        assert sdk_post(client, "/api/v1/evaluate", body, catalog.client_key).status_code == 200
        assert not usage.flush()
    assert usage.pending() == 1  # one entry per flag and environment, however many requests
    assert usage.flush()
    assert set(_times(catalog.environment)) == {"pricing"}


def test_single_flag__prerequisites__recorded_as_evaluated_too(client: Client, catalog: Catalog) -> None:
    # "upsell" requires "new-checkout": evaluating it evaluates its prerequisite as well.
    context = {"context": {"targetingKey": "u1"}}
    assert sdk_post(client, "/ofrep/v1/evaluate/flags/upsell", context, catalog.server_key).status_code == 200
    usage.flush()
    assert set(_times(catalog.environment)) == {"upsell", "new-checkout"}
    body = {"context": {"targetingKey": "u1"}, "flags": ["upsell"]}
    assert sdk_post(client, "/api/v1/evaluate", body, catalog.server_key).status_code == 200
    usage.flush()
    assert set(_times(catalog.environment)) == {"upsell", "new-checkout"}
