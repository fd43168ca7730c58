"""Experiment tags on the pages: the list filters by them (with a fixed number of queries),
rows and the results page show them, the guided creation asks for them."""

from __future__ import annotations

import importlib
import re
from typing import Any

from django.apps import apps
from django.test import Client

from experiments.models import Experiment
from flags.models import Flag
from tests.integration.pages import factories


def _keys(client: Client, query: str) -> set[str]:
    html = client.get(f"/experiments/?{query}").content.decode()
    return set(re.findall(r'data-experiment="([^"]+)"', html))


def test_experiment_list__tag_filter__experiment_tags_not_flag_tags(analyst_client: Client, db: Any) -> None:
    factories.seed(factories.winner_plan(history=1, tags=("checkout",)))
    flat = factories.create_experiment(factories.flat_plan("onboarding-copy", tags=("onboarding",)), start=False)
    # The flag keeps a tag the experiment does not have: the filter goes by the experiment's own.
    Flag.objects.filter(pk=flat.flag_id).update(tags=["flag-only"])
    Experiment.objects.filter(pk=flat.pk).update(tags=["onboarding", "copy"])
    assert _keys(analyst_client, "tag=checkout") == {"checkout-redesign"}
    assert _keys(analyst_client, "tag=copy") == {"onboarding-copy"}
    assert _keys(analyst_client, "tag=Copy") == {"onboarding-copy"}
    assert _keys(analyst_client, "tag=flag-only") == set()
    html = analyst_client.get("/experiments/").content.decode()
    options = re.findall(r"<option(?: selected)?>([^<]+)</option>", html.split('id="tag"')[1].split("</select>")[0])
    assert options == ["checkout", "copy", "onboarding"]
    row = html.split('data-experiment="onboarding-copy"')[1].split("</tr>")[0]
    assert '<span class="tag">onboarding</span><span class="tag">copy</span>' in row


def test_experiment_list__tags_and_more_experiments__same_number_of_queries(
    analyst_client: Client, db: Any, django_assert_max_num_queries: Any
) -> None:
    for i in range(3):
        factories.seed(factories.flat_plan(f"flat-{i}", history=2, tags=("onboarding", f"batch-{i}")))
    analyst_client.get("/experiments/")
    with django_assert_max_num_queries(8):
        assert analyst_client.get("/experiments/?tag=onboarding").status_code == 200
    for i in range(3, 15):
        factories.seed(factories.flat_plan(f"flat-{i}", history=2, tags=("onboarding", f"batch-{i}")))
    with django_assert_max_num_queries(8):
        response = analyst_client.get("/experiments/?tag=onboarding")
    assert response.content.decode().count("data-experiment=") == 15
    with django_assert_max_num_queries(8):
        response = analyst_client.get("/experiments/?tag=batch-7")
    assert response.content.decode().count("data-experiment=") == 1


def test_results_page__tags__linked_to_the_filtered_list(analyst_client: Client, db: Any) -> None:
    experiment = factories.seed(factories.winner_plan(history=1, tags=("checkout", "q3-growth")))
    html = analyst_client.get(f"/experiments/{experiment.key}/").content.decode()
    tags = html.split('id="experiment-tags"')[1].split("</span>")[0]
    assert 'href="/experiments/?tag=q3-growth"' in tags and ">checkout</a>" in tags


def _wizard(client: Client, tags: str) -> Any:
    factories.ensure_metrics([factories.MetricPlan("purchase", "conversion")])
    factories.environment()
    return client.post("/experiments/new/basics/", {
        "key": "tagged-button", "environment": "production", "hypothesis": "A bigger button lifts purchases.",
        "tags": tags,
    })


def test_wizard__tags__normalised_and_stored(analyst_client: Client, db: Any) -> None:
    assert _wizard(analyst_client, "Checkout, q3-growth, checkout").status_code == 302
    steps: list[tuple[str, dict[str, Any]]] = [
        ("flag", {"new_flag": "tagged-button-flag"}),
        ("split", {"control": "off", "treatments": ["on"], "weights": "50/50", "coverage": "100",
                   "condition": "", "hash_attribute": "id"}),
        ("metrics", {"primary": "purchase", "alpha": "0.05", "correction": "none", "slice_attributes": ""}),
        ("power", {"mde": "5", "baseline": "12", "daily_users": "4000"}),
    ]
    for step, data in steps:
        assert analyst_client.post(f"/experiments/new/{step}/", data).status_code == 302, step
    review = analyst_client.get("/experiments/new/review/").content.decode()
    assert "checkout, q3-growth" in review
    assert analyst_client.post("/experiments/new/review/", {"action": "draft"}).status_code == 302
    assert Experiment.objects.get(key="tagged-button").tags == ["checkout", "q3-growth"]


def test_wizard__bad_tags__error_shown_and_nothing_kept(analyst_client: Client, db: Any) -> None:
    response = _wizard(analyst_client, "fine, not fine")
    assert response.status_code == 200
    assert "is not a tag" in response.content.decode()
    assert "experiment_wizard" not in analyst_client.session
    assert not Experiment.objects.exists()


def test_migration__existing_experiments__get_their_flags_valid_tags(db: Any) -> None:
    experiment = factories.create_experiment(factories.flat_plan("old-one"), start=False)
    Flag.objects.filter(pk=experiment.flag_id).update(tags=["Checkout", "not a slug", "checkout", "x" * 41])
    Experiment.objects.filter(pk=experiment.pk).update(tags=[])
    migration = importlib.import_module("experiments.migrations.0007_experiment_tags")
    migration.copy_flag_tags(apps, None)
    experiment.refresh_from_db()
    assert experiment.tags == ["checkout"]
