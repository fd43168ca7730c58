"""Targeting on the PM pages: the ramp form and the guided creation carry the condition builder
(with the attribute definitions) and the saved segments; the review says who may enter in words."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from experiments.models import Experiment, Metric
from flags import attributes, services
from flags.models import Rule
from tests.integration.pages import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def targeting(db: Any) -> None:
    factories.environment()
    attributes.attribute_create(actor=factories.ACTOR, name="plan", allowed_values=["free", "pro", "business"])
    services.segment_create(actor=factories.ACTOR, key="eu-customers", name="EU customers",
                            condition={"country": {"$in": ["DE", "FR"]}})


def _catalog(page: str) -> dict[str, Any]:
    start = page.index('<script type="application/json">') + len('<script type="application/json">')
    return dict(json.loads(page[start:page.index("</script>", start)]))


def test_ramp_form__builder_catalog_and_segments_offered__saved_onto_every_step(
    client_for: Any, analyst: User, targeting: None
) -> None:
    flag = services.flag_create(actor=factories.ACTOR, key="new-search")
    client = client_for(analyst)
    page = client.get(f"/flags/{flag.key}/ramps/new").content.decode()
    assert [a["name"] for a in _catalog(page)["attributes"]] == ["plan"]
    assert "data-condition-builder" in page and "flags/condition-builder.js" in page
    assert 'value="eu-customers"' in page and "EU customers (eu-customers)" in page

    response = client.post(f"/flags/{flag.key}/ramps/new", {
        "environment": "production", "variant": "on", "percents": "10, 100",
        "start": timezone.now().strftime("%Y-%m-%dT%H:%M"), "interval_hours": "24", "position": "bottom",
        "condition": '{"plan": {"$in": ["pro", "business"]}}', "segments": ["eu-customers"],
    })

    assert response.status_code == 302, response.content.decode()[:2000]
    rules = list(Rule.objects.filter(state__flag=flag))
    assert len(rules) == 2
    assert all(r.segments == ["eu-customers"] and r.condition == {"plan": {"$in": ["pro", "business"]}}
               for r in rules)


def _walk_to_review(client: Any, split: dict[str, Any]) -> Any:
    steps: list[tuple[str, dict[str, Any]]] = [
        ("basics", {"key": "eu-annual", "owner": "pm", "environment": "production",
                    "hypothesis": "Annual billing first lifts purchases by 5% because it is cheaper."}),
        ("flag", {"new_flag": "eu-annual-flag"}),
        ("split", {"control": "off", "treatments": ["on"], "weights": "50/50", "coverage": "100",
                   "hash_attribute": "id", **split}),
        ("metrics", {"primary": "purchase", "alpha": "0.05", "correction": "none", "slice_attributes": ""}),
        ("power", {"mde": "5", "baseline": "12", "daily_users": "4000"}),
    ]
    for step, data in steps:
        response = client.post(f"/experiments/new/{step}/", data)
        assert response.status_code == 302, (step, response.content.decode()[:2000])
    return client.get("/experiments/new/review/")


def test_guided_creation__condition_and_segments__in_words_on_the_review_and_on_the_experiment(
    client_for: Any, analyst: User, targeting: None
) -> None:
    factories.ensure_metrics([factories.MetricPlan("purchase", "conversion")])
    client = client_for(analyst)
    split_page = client.get("/experiments/new/basics/?restart=1")
    assert split_page.status_code == 200

    review = _walk_to_review(client, {"condition": '{"plan": {"$in": ["pro", "business"]}}',
                                      "segments": ["eu-customers"]})

    text = review.content.decode()
    assert "In segment eu-customers and plan is one of pro, business" in text
    assert "{&#x27;plan&#x27;" not in text and "{'plan'" not in text
    # Back on the split step, the answers are shown as JSON and ticked boxes, not Python.
    split = client.get("/experiments/new/split/").content.decode()
    assert "&quot;$in&quot;: [" in split and "{&#x27;" not in split
    assert re.search(r'<input type="checkbox" name="segments" value="eu-customers"[^>]*checked', split)
    assert client.post("/experiments/new/review/", {"action": "start"}).status_code == 302
    experiment = Experiment.objects.get(key="eu-annual")
    assert experiment.segments == ["eu-customers"] and experiment.condition == {"plan": {"$in": ["pro", "business"]}}
    assert Rule.objects.get(uid=experiment.rule_uid).segments == ["eu-customers"]
    page = client.get("/experiments/eu-annual/").content.decode()
    assert "In segment eu-customers and plan is one of pro, business" in page
    assert Metric.objects.filter(key="purchase").exists()


def test_guided_creation__unknown_attribute__a_warning_not_an_error(
    client_for: Any, analyst: User, targeting: None
) -> None:
    factories.ensure_metrics([factories.MetricPlan("purchase", "conversion")])
    review = _walk_to_review(client_for(analyst), {"condition": '{"browser": "firefox"}'})
    assert review.status_code == 200
    text = review.content.decode()
    assert "Browser is firefox" in text
    assert 'class="banner warn targeting-warning"' in text and "browser is not a defined attribute" in text
