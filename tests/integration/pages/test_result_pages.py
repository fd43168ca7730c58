"""Result pages rendered from stored readouts: content, toggles, exports, slices, query counts."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any
from xml.etree import ElementTree

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from experiments import readout_jobs as readouts
from experiments.ingestion import events_ingest
from experiments.models import Experiment, ResultSnapshot
from tests.integration.pages import factories

pytestmark = pytest.mark.django_db


def _text(response: Any) -> str:
    html = response.content.decode()
    html = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _svgs(response: Any) -> dict[str, ElementTree.Element]:
    """Every chart on the page, parsed as XML (so a broken chart fails here), by its class."""
    found: dict[str, ElementTree.Element] = {}
    for svg in re.findall(r"<svg .*?</svg>", response.content.decode(), flags=re.S):
        root = ElementTree.fromstring(svg)
        found.setdefault(root.attrib["class"].split()[-1], root)
    return found


def test_experiment_list__seeded__rows_lift_and_badges(client_for: Any, analyst: User) -> None:
    winner = factories.seed(factories.winner_plan())
    srm = factories.seed(factories.srm_plan())
    guard = factories.seed(factories.guardrail_plan())
    draft = factories.create_experiment(factories.flat_plan("draft-idea"), start=False)
    response = client_for(analyst).get("/experiments/")
    assert response.status_code == 200
    html = response.content.decode()
    for e in (winner, srm, guard, draft):
        assert f'data-experiment="{e.key}"' in html
    row = html.split(f'data-experiment="{winner.key}"')[1].split("</tr>")[0]
    assert "sig-good" in row and re.search(r"Treatment: \+1\d\.\d%", row)
    assert "12,001" in row  # users per arm
    srm_row = html.split(f'data-experiment="{srm.key}"')[1].split("</tr>")[0]
    assert "badge-srm" in srm_row
    guard_row = html.split(f'data-experiment="{guard.key}"')[1].split("</tr>")[0]
    assert "badge-guardrail" in guard_row
    draft_row = html.split(f'data-experiment="{draft.key}"')[1].split("</tr>")[0]
    assert "Draft" in draft_row and "badge-" not in draft_row


def test_experiment_list__filters__status_owner_tag_search(client_for: Any, analyst: User) -> None:
    factories.seed(factories.winner_plan(owner="ana"))
    factories.seed(factories.flat_plan(owner="bo"))
    factories.create_experiment(factories.flat_plan("draft-idea", tags=("onboarding",)), start=False)
    client = client_for(analyst)

    def keys(query: str) -> set[str]:
        html = client.get(f"/experiments/?{query}").content.decode()
        return set(re.findall(r'data-experiment="([^"]+)"', html))

    assert keys("status=draft") == {"draft-idea"}
    assert keys("owner=ana") == {"checkout-redesign"}
    assert keys("tag=onboarding") == {"onboarding-copy", "draft-idea"}
    assert keys("q=redesign") == {"checkout-redesign"}
    assert keys("") == {"checkout-redesign", "onboarding-copy", "draft-idea"}


def test_experiment_list__more_experiments__same_number_of_queries(
    client_for: Any, analyst: User, django_assert_max_num_queries: Any
) -> None:
    client = client_for(analyst)
    for i in range(3):
        factories.seed(factories.flat_plan(f"flat-{i}", history=2))
    client.get("/experiments/")
    with django_assert_max_num_queries(8):
        assert client.get("/experiments/").status_code == 200
    for i in range(3, 15):
        factories.seed(factories.flat_plan(f"flat-{i}", history=2))
    with django_assert_max_num_queries(8):
        response = client.get("/experiments/")
    assert response.content.decode().count("data-experiment=") == 15


def test_experiment_detail__winner__table_forest_trend_and_ship(
    client_for: Any, analyst: User, winner: Experiment, django_assert_max_num_queries: Any
) -> None:
    client = client_for(analyst)
    client.get(f"/experiments/{winner.key}/")
    # 17: the page, its readout, the permissions, and the ramp (planned steps, the right to ramp).
    with django_assert_max_num_queries(17):
        response = client.get(f"/experiments/{winner.key}/")
    assert response.status_code == 200
    html = response.content.decode()
    text = _text(response)
    assert 'id="goal-table"' in html and 'id="guardrail-table"' in html
    assert 'data-metric="purchase" data-variation="treatment" data-tone="good"' in html
    assert 'data-metric="errors" data-variation="treatment" data-tone="neutral"' in html
    assert 'data-verdict="ship"' in html
    assert "Ship: Treatment beat the control" in text and "always-valid (sequential) interval excludes zero" in text
    assert "No guardrail harmed" in text
    charts = _svgs(response)
    assert {"forest-plot", "trend-chart", "users-chart"} <= set(charts)
    trend = charts["trend-chart"]
    ns = "{http://www.w3.org/2000/svg}"
    assert trend.find(f"{ns}polygon") is not None  # the confidence-sequence band
    assert len(trend.findall(f"{ns}circle")) == 8  # one point per readout in the history
    forest = charts["forest-plot"]
    assert len(forest.findall(f"{ns}g")) == 4  # four metrics, one treatment each
    assert "Sample ratio check: passed" in text
    assert 'id="srm-banner"' not in html
    # Every column header explains itself.
    head = html.split('id="goal-table"')[1].split("</thead>")[0]
    assert head.count('class="tip"') >= 9


def test_experiment_detail__more_metrics_and_slices__same_number_of_queries(
    client_for: Any, analyst: User, django_assert_max_num_queries: Any
) -> None:
    client = client_for(analyst)
    small = factories.seed(factories.flat_plan("small-one", history=2))
    plan = factories.winner_plan("wide-one", history=3)
    plan.metrics = [*plan.metrics, *(factories.MetricPlan(f"extra-{i}", "mean", base=2.0) for i in range(8))]
    wide = factories.seed(plan)
    client.get(f"/experiments/{small.key}/")
    with django_assert_max_num_queries(17) as small_queries:
        client.get(f"/experiments/{small.key}/")
    with django_assert_max_num_queries(17) as wide_queries:
        response = client.get(f"/experiments/{wide.key}/")
    assert len(wide_queries.captured_queries) == len(small_queries.captured_queries)
    assert response.content.decode().count('class="result-row"') == 12


def test_experiment_detail__srm__banner_explains_and_inconclusive(
    client_for: Any, analyst: User, srm_experiment: Experiment
) -> None:
    response = client_for(analyst).get(f"/experiments/{srm_experiment.key}/")
    html = response.content.decode()
    text = _text(response)
    assert 'id="srm-banner"' in html
    assert "Sample ratio mismatch" in text
    assert "The split asked for Control 50.0%, Treatment 50.0%" in text
    assert "less than 1 in 1,000" in text
    assert 'data-verdict="inconclusive"' in html
    assert "Sample ratio check: failed" in text
    # The users chart adds the expected split as dashed lines when the check fails.
    assert "stroke-dasharray" in html.split('class="chart users-chart"')[1].split("</svg>")[0]


def test_experiment_detail__guardrail_harmed__roll_back(client_for: Any, analyst: User) -> None:
    experiment = factories.seed(factories.guardrail_plan())
    response = client_for(analyst).get(f"/experiments/{experiment.key}/")
    text = _text(response)
    assert 'data-verdict="rollback"' in response.content.decode()
    assert "Guardrail errors is worse for Treatment" in text
    assert "at a guardrail's expense" in text
    assert 'data-metric="errors" data-variation="treatment" data-tone="bad"' in response.content.decode()


def test_experiment_detail__no_effect_running__keep_running_with_power(client_for: Any, analyst: User) -> None:
    experiment = factories.seed(factories.flat_plan())
    response = client_for(analyst).get(f"/experiments/{experiment.key}/")
    html = response.content.decode()
    text = _text(response)
    assert 'data-verdict="keep_running"' in html
    assert "more users are needed to detect a 5.0% effect" in text
    assert 'id="power"' in html
    assert re.search(r"Detectable now \d+\.\d%", text)
    assert re.search(r"Projected date \d{4}-\d\d-\d\d", text)
    # A target typed on the page replaces the planned one.
    response = client_for(analyst).get(f"/experiments/{experiment.key}/?mde=50")
    assert "Target effect 50.0%" in _text(response)
    assert "More users needed none" in _text(response)


def test_experiment_detail__no_effect_stopped__inconclusive(client_for: Any, analyst: User) -> None:
    experiment = factories.seed(factories.flat_plan())
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.STOPPED, stopped_at=timezone.now(),
                                                       decision=Experiment.Decision.ROLLBACK)
    response = client_for(analyst).get(f"/experiments/{experiment.key}/")
    assert 'data-verdict="inconclusive"' in response.content.decode()
    assert "The test could detect effects of about" in _text(response)


def test_experiment_detail__cuped_toggle__shows_stored_fixed_numbers(client_for: Any, analyst: User) -> None:
    experiment = factories.seed(factories.flat_plan("cuped-check"))  # fixed horizon, CUPED on
    snapshot = ResultSnapshot.objects.filter(experiment=experiment).order_by("-created_at").first()
    assert snapshot is not None
    primary = snapshot.metrics[0]
    fixed = primary["fixed"][0]
    cuped = primary["cuped"][0]
    client = client_for(analyst)

    def interval_cell(query: str) -> str:
        html = client.get(f"/experiments/{experiment.key}/{query}").content.decode()
        row = html.split('data-metric="signup"')[1].split("</tr>")[0]
        return re.search(r'class="num interval">([^<]*)<', row).group(1)  # type: ignore[union-attr]

    on, off = interval_cell("?cuped=on"), interval_cell("?cuped=off")
    assert on != off
    assert f"{cuped['ci_low'] * 100:+.1f}%" in on
    assert f"{fixed['ci_low'] * 100:+.1f}%" in off
    assert "fixed-horizon, unadjusted" in _text(client.get(f"/experiments/{experiment.key}/?cuped=off"))


def test_experiment_detail__difference_toggle__only_stored_types_offered(
    client_for: Any, analyst: User, winner: Experiment
) -> None:
    response = client_for(analyst).get(f"/experiments/{winner.key}/?diff=absolute")
    html = response.content.decode()
    toggle = html.split('id="toggle-diff"')[1].split('class="small muted"')[0]
    assert 'data-value="relative"' in toggle
    latest = winner.snapshots.order_by("-created_at").first()
    assert latest is not None
    if "absolute" not in {c["difference_type"] for m in latest.metrics for c in m["fixed"]}:
        assert '<span class="disabled">Absolute</span>' in toggle
        assert "stored relative results only" in _text(response)


def test_experiment_detail__slices__drill_down_with_caveat(client_for: Any, analyst: User, winner: Experiment) -> None:
    client = client_for(analyst)
    response = client.get(f"/experiments/{winner.key}/?slice=platform&slice_metric=revenue")
    html = response.content.decode()
    assert 'id="slice-caveat"' in html
    assert set(re.findall(r'<tr data-slice="([^"]+)"', html)) == {"ios", "android", "web"}
    assert "revenue by platform" in html
    response = client.get(f"/experiments/{winner.key}/?slice=country")
    assert set(re.findall(r'<tr data-slice="([^"]+)"', response.content.decode())) == set(factories.SLICES["country"])


def test_experiment_detail__failed_latest_readout__banner_and_older_numbers(
    client_for: Any, analyst: User, winner: Experiment
) -> None:
    failed = ResultSnapshot.objects.create(experiment=winner, phase=winner.phases.first(), status="failed",
                                           error="OperationalError: the database went away", finished_at=timezone.now())
    assert failed.pk
    response = client_for(analyst).get(f"/experiments/{winner.key}/")
    html = response.content.decode()
    assert 'id="failed-banner"' in html and "the database went away" in html
    assert 'id="goal-table"' in html
    listing = client_for(analyst).get("/experiments/").content.decode()
    assert "badge-failed" in listing.split(f'data-experiment="{winner.key}"')[1].split("</tr>")[0]


def test_exports__csv_and_json__parse_and_match_the_snapshot(
    client_for: Any, analyst: User, winner: Experiment
) -> None:
    client = client_for(analyst)
    snapshot = ResultSnapshot.objects.filter(experiment=winner, status="success").order_by("-created_at").first()
    assert snapshot is not None
    response = client.get(f"/experiments/{winner.key}/export.json")
    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    body = json.loads(response.content)
    assert body["experiment"] == winner.key and body["id"] == snapshot.pk
    assert body["metrics"] == json.loads(json.dumps(snapshot.metrics))
    assert len(body["slices"]) == len(snapshot.slices) > 0
    response = client.get(f"/experiments/{winner.key}/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    overall = [r for r in rows if not r["slice_attribute"]]
    # metrics x analyses (fixed, cuped, sequential, sequential_unadjusted) x difference types x one treatment
    assert len(overall) == 4 * 4 * 2
    seq = next(r for r in overall if r["metric"] == "purchase" and r["analysis"] == "sequential")
    stored = next(c for c in snapshot.metrics[0]["sequential"])
    assert float(seq["estimate"]) == pytest.approx(stored["estimate"])
    assert seq["headline"] == "True"
    sliced = [r for r in rows if r["slice_attribute"]]
    assert {r["slice_attribute"] for r in sliced} == set(factories.SLICES)
    first = winner.snapshots.order_by("created_at").first()
    assert first is not None
    old = client.get(f"/experiments/{winner.key}/export.json?snapshot={first.pk}")
    assert json.loads(old.content)["id"] == first.pk


def test_exports__no_readout__404(client_for: Any, analyst: User) -> None:
    draft = factories.create_experiment(factories.flat_plan("draft-idea"), start=False)
    assert client_for(analyst).get(f"/experiments/{draft.key}/export.csv").status_code == 404
    assert client_for(analyst).get("/experiments/nope/").status_code == 404


def test_experiment_detail__real_readout_from_events__renders(client_for: Any, analyst: User) -> None:
    """The page reads what the real readout writes: exposures and events in, readout run, page out."""
    plan = factories.ExperimentPlan(
        key="real-readout", metrics=[factories.MetricPlan("buy", "conversion", "primary"),
                                     factories.MetricPlan("spend", "mean", "secondary")],
        slices={"country": ("DE", "FR")}, days=3,
    )
    experiment = factories.create_experiment(plan)
    now = datetime.now(tz=UTC)
    items: list[dict[str, Any]] = []
    for i in range(400):
        arm = "control" if i % 2 == 0 else "treatment"
        seen = now - timedelta(hours=30 - i % 20)
        items.append({"id": f"x{i}", "type": "exposure", "unit_id": f"u{i}", "timestamp": seen.isoformat(),
                      "experiment": experiment.key, "variation": arm,
                      "attributes": {"country": "DE" if i % 3 else "FR"}})
        if i % (4 if arm == "treatment" else 6) == 0:
            items.append({"id": f"e{i}", "type": "event", "unit_id": f"u{i}", "name": "buy",
                          "timestamp": (seen + timedelta(hours=1)).isoformat(), "value": 1})
            items.append({"id": f"s{i}", "type": "event", "unit_id": f"u{i}", "name": "spend",
                          "timestamp": (seen + timedelta(hours=1)).isoformat(), "value": 10 + i % 7})
    result = events_ingest(environment=experiment.environment, items=items[:1000], now=now)
    assert not result.rejected, result.rejected[:3]
    snapshot = readouts.readout_run(experiment_id=experiment.pk)
    assert snapshot is not None and snapshot.status == "success", snapshot and snapshot.error
    response = client_for(analyst).get(f"/experiments/{experiment.key}/?slice=country")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-metric="buy" data-variation="treatment"' in html
    assert set(re.findall(r'<tr data-slice="([^"]+)"', html)) == {"DE", "FR"}
    assert {"forest-plot", "trend-chart", "users-chart"} <= set(_svgs(response))
    assert "200 / 200" in _text(response)
