"""GrowthBook remote evaluation (`POST /api/eval/{clientKey}`) through the real SDKs against a
live server: the JavaScript and Python SDKs in remote-eval mode get, unit by unit, the values
`/api/v1/evaluate` gives and report the same experiments; forced variations and forced values
are honoured; exposures are recorded as the evaluate endpoint records them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from growthbook import GrowthBook

from flags import services
from serving.exposures import buffer as exposure_buffer
from tests.conftest import IN_CI
from tests.integration.serving.conftest import ACTOR, RECORDED, Catalog, build_catalog, sdk_post, unit_context

JS = Path(__file__).resolve().parents[2] / "js"
UNITS = 300


def node_ready() -> None:
    if shutil.which("node") and (JS / "node_modules" / "@growthbook" / "growthbook").is_dir():
        return
    message = "the JavaScript SDK tests need node and `make js-deps` (npm ci in tests/js)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def live_catalog(transactional_db: Any) -> Catalog:
    """The catalog, committed for the live server's threads (the live server's tests are
    transactional: their data is flushed after each)."""
    return build_catalog(services.environment_create(actor=ACTOR, key="production"))


def run_js_sdk(api_host: str, client_key: str, units: list[dict[str, Any]], tmp_path: Path,
               decryption_key: str | None = None) -> list[dict[str, Any]]:
    """Each unit's feature values and tracked experiments as the JavaScript SDK sees them."""
    node_ready()
    units_file = tmp_path / "units.json"
    units_file.write_text(json.dumps(units))
    args = ["node", str(JS / "growthbook_remote_eval.mjs"), api_host, client_key, str(units_file)]
    if decryption_key:
        args.append(decryption_key)
    done = subprocess.run(args, cwd=JS, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(units), done.stdout[-2000:] + done.stderr[-2000:]
    return lines


def sdk_attributes(i: int) -> dict[str, Any]:
    context = unit_context(i)
    return {**{k: v for k, v in context.items() if k != "targetingKey"}, "id": context["targetingKey"]}


def evaluated(client: Client, key: str, attributes: dict[str, Any]) -> dict[str, Any]:
    context = {**attributes, "targetingKey": attributes["id"]}
    response = sdk_post(client, "/api/v1/evaluate", {"context": context, "track": False}, key)
    assert response.status_code == 200
    flags: dict[str, Any] = response.json()["flags"]
    return flags


def test_remote_eval__javascript_sdk__values_and_tracking_equal_evaluate_for_300_units(
    live_server: Any, client: Client, live_catalog: Catalog, tmp_path: Path
) -> None:
    units = [{"attributes": sdk_attributes(i)} for i in range(UNITS)]
    seen = run_js_sdk(live_server.url, live_catalog.client_key, units, tmp_path)
    placed: set[tuple[str, str]] = set()
    mismatches: list[str] = []
    for unit, got in zip(units, seen, strict=True):
        assert got["ready"] is True, got["error"]
        ours = evaluated(client, live_catalog.client_key, unit["attributes"])
        assert set(got["values"]) == set(ours)
        mine: set[tuple[str, str]] = set()
        for key, flag in ours.items():
            if got["values"][key] != flag["value"]:
                mismatches.append(f"{unit['attributes']['id']} {key}: SDK {got['values'][key]!r} != {flag['value']!r}")
            experiment = flag["experiment"]
            if experiment is not None and experiment["inExperiment"]:
                mine.add((experiment["key"], experiment["variation"]))
        # The SDK's tracking callback fired for exactly the experiments the unit was placed in.
        assert {(t["experiment"], t["variation"]) for t in got["tracked"]} == mine
        placed |= mine
    assert not mismatches, "\n".join(mismatches[:20])
    # Every experiment of the catalog placed units (the ratio flag's experiment is named by its rule).
    assert {"pricing-exp", "search-exp", "search-ui-exp"} < {p[0] for p in placed} and len({p[0] for p in placed}) == 4
    # Exposures were recorded for the placed units, as /api/v1/evaluate records them.
    exposure_buffer.flush()
    assert {(e.experiment, e.variation) for e in RECORDED} == placed


def test_remote_eval__forced_variations_and_values__honoured_and_not_recorded(
    live_server: Any, client: Client, live_catalog: Catalog, tmp_path: Path
) -> None:
    attributes = sdk_attributes(11)
    units = [{
        "attributes": attributes,
        "forcedVariations": {"pricing-exp": 1, "search-ui-exp": 0},
        "forcedFeatures": [["new-checkout", True], ["max-upload", 7]],
    }]
    got = run_js_sdk(live_server.url, live_catalog.client_key, units, tmp_path)[0]
    assert got["ready"] is True, got
    assert got["values"]["pricing"] == {"layout": "compact", "cta": "Try"}
    assert got["values"]["search-ui"] == "list"
    assert got["values"]["max-upload"] == 7
    assert got["values"]["new-checkout"] is True
    exposure_buffer.flush()
    assert not [e for e in RECORDED if e.experiment in ("pricing-exp", "search-ui-exp")]
    # upsell depends on new-checkout: the server evaluated it with the forced value.
    body = {"attributes": attributes, "forcedFeatures": [["new-checkout", False]]}
    answer = sdk_post(client, f"/api/eval/{live_catalog.client_key}", body, None).json()
    assert answer["features"]["new-checkout"] == {"defaultValue": False}
    assert answer["features"]["upsell"] == {"defaultValue": None}


def test_remote_eval__python_sdk__agrees_with_evaluate(live_server: Any, client: Client, live_catalog: Catalog) -> None:
    for i in range(0, 60, 7):
        attributes = sdk_attributes(i)
        gb = GrowthBook(api_host=live_server.url, client_key=live_catalog.client_key, remote_eval=True,
                        attributes=attributes)
        try:
            ours = evaluated(client, live_catalog.client_key, attributes)
            for key, flag in ours.items():
                assert gb.get_feature_value(key, None) == flag["value"], (i, key)
        finally:
            gb.destroy()
