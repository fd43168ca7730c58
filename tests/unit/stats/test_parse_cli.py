"""JSON input/output and the `python -m stats analyze` command."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import stats
from stats.__main__ import main

ROOT = Path(__file__).resolve().parents[3]
OUTPUT_KEYS = {"srm_p_value", "srm_warning", "variations", "comparisons"}
VARIATION_KEYS = {"name", "users", "mean", "stddev"}
COMPARISON_KEYS = {
    "variation",
    "difference_type",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "chance_to_win",
    "cuped_applied",
    "variance_reduction",
    "sequential",
    "error",
}


OTHER = {"name": "t", "users": 10, "main_sum": 20, "main_sum_squares": 100}


def _analysis(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "metric": "mean",
        "alpha": 0.05,
        "difference_type": "relative",
        "sequential": False,
        "sequential_tuning_parameter": 5000,
        "cuped": True,
        "weights": [0.5, 0.5],
        "variations": [
            {
                "name": "control",
                "users": 5000,
                "main_sum": 50000,
                "main_sum_squares": 1000000,
                "covariate_sum": 48000,
                "covariate_sum_squares": 900000,
                "main_covariate_sum_product": 700000,
            },
            {
                "name": "treatment",
                "users": 5100,
                "main_sum": 53000,
                "main_sum_squares": 1080000,
                "covariate_sum": 49000,
                "covariate_sum_squares": 910000,
                "main_covariate_sum_product": 730000,
            },
        ],
    }
    base.update(overrides)
    return base


def _run(payload: Any) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    old = sys.stderr
    sys.stderr = err
    try:
        code = main(["analyze"], io.StringIO(payload if isinstance(payload, str) else json.dumps(payload)), out)
    finally:
        sys.stderr = old
    return code, (json.loads(out.getvalue()) if code == 0 else None), err.getvalue()


def test_cli__one_object__documented_keys_only() -> None:
    code, out, _ = _run(_analysis())
    assert code == 0
    assert set(out) == OUTPUT_KEYS
    assert all(set(v) == VARIATION_KEYS for v in out["variations"])
    assert all(set(c) == COMPARISON_KEYS for c in out["comparisons"])
    assert out["comparisons"][0]["cuped_applied"] is True


def test_cli__list_of_objects__list_of_results_in_order() -> None:
    code, out, _ = _run([_analysis(), _analysis(metric="mean", cuped=False, difference_type="absolute")])
    assert code == 0 and isinstance(out, list) and len(out) == 2
    assert out[1]["comparisons"][0]["difference_type"] == "absolute"
    assert out[1]["comparisons"][0]["cuped_applied"] is False


def test_cli__family_with_correction__adds_adjusted_p_values() -> None:
    code, out, _ = _run({"correction": "bh", "analyses": [_analysis(), _analysis(sequential=True)]})
    assert code == 0 and out["correction"] == "bh"
    comparisons = [c for r in out["analyses"] for c in r["comparisons"]]
    assert all(set(c) == COMPARISON_KEYS | {"p_value_adjusted"} for c in comparisons)
    assert all(c["p_value_adjusted"] >= c["p_value"] for c in comparisons)


def test_cli__undefined_result__nulls_and_error_code_not_exception() -> None:
    variations = [
        {"name": "c", "users": 1, "main_sum": 3, "main_sum_squares": 9},
        {"name": "t", "users": 10, "main_sum": 5, "main_sum_squares": 9},
    ]
    code, out, _ = _run({"metric": "mean", "variations": variations})
    comparison = out["comparisons"][0]
    assert code == 0 and comparison["error"] == "too_few_users"
    assert comparison["estimate"] is None and comparison["p_value"] is None
    assert out["variations"][0]["stddev"] is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (_analysis(metric="median"), "metric"),
        (_analysis(alpha=1.5), "alpha"),
        (_analysis(cupd=True), "cupd"),
        (_analysis(weights=[1.0]), "weights"),
        (_analysis(variations=[_analysis()["variations"][0]]), "variations"),
        (_analysis(cuped=False, variations=[{"name": "c", "users": -3, "main_sum": 1}, OTHER]), "variations[0].users"),
        (_analysis(cuped=False, variations=[{"name": "c", "users": 3.5, "main_sum": 1}, OTHER]), "variations[0].users"),
        (_analysis(variations=[{"name": "c", "users": 3, "main_sum": "x"}, OTHER]), "variations[0].main_sum"),
        (_analysis(variations=[{"users": 3, "main_sum": 1}, OTHER]), "variations[0].name"),
        (
            _analysis(variations=[OTHER, {"name": "t", "users": 3, "main_sum": 1, "main_sum_squares": True}]),
            "variations[1].main_sum_squares",
        ),
        (_analysis(sequential="yes"), "sequential"),
    ],
)
def test_cli__malformed_object__exit_2_naming_field(payload: Any, field: str) -> None:
    code, _, err = _run(payload)
    assert code == 2
    assert f"error: {field}:" in err


def test_cli__missing_required_sums__exit_2_naming_variation_field() -> None:
    payload = _analysis()
    del payload["variations"][1]["main_sum_squares"]
    code, _, err = _run(payload)
    assert code == 2 and "variations[1].main_sum_squares" in err


def test_cli__covariate_in_one_arm_only__exit_2_naming_field() -> None:
    payload = _analysis()
    del payload["variations"][0]["covariate_sum"]
    code, _, err = _run(payload)
    assert code == 2 and "variations[0].covariate_sum" in err


def test_cli__error_inside_list__path_has_index() -> None:
    code, _, err = _run([_analysis(), _analysis(difference_type="ratio")])
    assert code == 2 and "[1].difference_type" in err
    code, _, err = _run(
        {
            "correction": "holm",
            "analyses": [
                _analysis(),
                {
                    **_analysis(),
                    "variations": [
                        _analysis()["variations"][0],
                        {"name": "t", "users": 10, "main_sum": 20, "main_sum_squares": 100},
                    ],
                },
            ],
        }
    )
    assert code == 2 and "analyses[1].variations[1].covariate_sum" in err


def test_cli__binomial_converters_above_users__exit_2() -> None:
    payload = {
        "metric": "binomial",
        "variations": [{"name": "c", "users": 10, "main_sum": 11}, {"name": "t", "users": 10, "main_sum": 3}],
    }
    code, _, err = _run(payload)
    assert code == 2 and "variations[0].main_sum" in err


def test_cli__invalid_json__exit_2() -> None:
    code, _, err = _run("{not json")
    assert code == 2 and "invalid JSON" in err


def test_parse_analysis__extra_warehouse_columns__ignored() -> None:
    payload = _analysis()
    payload["variations"][0] |= {"count": 5000, "main_cap_value": 99.0, "variation": "0"}
    parsed = stats.parse_analysis(payload)
    assert parsed.variations[0].users == 5000 and parsed.cuped


def test_python_m_stats__subprocess__reads_stdin_and_exits_2_on_bad_input() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "stats", "analyze"],
        input=json.dumps(_analysis()),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert set(json.loads(ok.stdout)) == OUTPUT_KEYS
    bad = subprocess.run(
        [sys.executable, "-m", "stats", "analyze"],
        input=json.dumps(_analysis(alpha="x")),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert bad.returncode == 2 and "alpha" in bad.stderr


# One family request, pinned as text: key order, None for undefined numbers, ints for user
# counts, float digits, indentation and the trailing newline are all part of the output.
PINNED_REQUEST: dict[str, Any] = {
    "correction": "holm",
    "analyses": [
        {
            "metric": "binomial",
            "difference_type": "absolute",
            "weights": [1, 1],
            "variations": [
                {"name": "control", "users": 1000, "main_sum": 100},
                {"name": "treatment", "users": 1010, "main_sum": 131},
            ],
        },
        {
            "metric": "mean",
            "cuped": True,
            "sequential": True,
            "variations": [
                {
                    "name": "control",
                    "users": 400,
                    "main_sum": 4000.0,
                    "main_sum_squares": 50000.0,
                    "covariate_sum": 3900.0,
                    "covariate_sum_squares": 47000.0,
                    "main_covariate_sum_product": 45000.0,
                },
                {
                    "name": "faster",
                    "users": 410,
                    "main_sum": 4300.5,
                    "main_sum_squares": 55000.0,
                    "covariate_sum": 4000.0,
                    "covariate_sum_squares": 48000.0,
                    "main_covariate_sum_product": 47500.0,
                    "denominator_sum": None,
                    "segment": "all",
                },
                {
                    "name": "broken",
                    "users": 1,
                    "main_sum": 10.0,
                    "main_sum_squares": 100.0,
                    "covariate_sum": 9.0,
                    "covariate_sum_squares": 81.0,
                    "main_covariate_sum_product": 90.0,
                },
            ],
        },
    ],
}
PINNED_OUTPUT = """\
{
  "correction": "holm",
  "analyses": [
    {
      "srm_p_value": 0.8234966946547395,
      "srm_warning": false,
      "variations": [
        {
          "name": "control",
          "users": 1000,
          "mean": 0.1,
          "stddev": 0.30000000000000004
        },
        {
          "name": "treatment",
          "users": 1010,
          "mean": 0.1297029702970297,
          "stddev": 0.33597635302675327
        }
      ],
      "comparisons": [
        {
          "variation": "treatment",
          "difference_type": "absolute",
          "estimate": 0.0297029702970297,
          "ci_low": 0.0018460610663981712,
          "ci_high": 0.05755987952766123,
          "p_value": 0.03664373070002607,
          "chance_to_win": 0.9817415003638139,
          "cuped_applied": false,
          "variance_reduction": null,
          "sequential": false,
          "error": null,
          "p_value_adjusted": 0.07328746140005214
        }
      ]
    },
    {
      "srm_p_value": 3.6046886798263946e-88,
      "srm_warning": true,
      "variations": [
        {
          "name": "control",
          "users": 400,
          "mean": 10.0,
          "stddev": 5.006261743217589
        },
        {
          "name": "faster",
          "users": 410,
          "mean": 10.489024390243902,
          "stddev": 4.917895719956055
        },
        {
          "name": "broken",
          "users": 1,
          "mean": 10.0,
          "stddev": null
        }
      ],
      "comparisons": [
        {
          "variation": "faster",
          "difference_type": "relative",
          "estimate": 0.04851028910994062,
          "ci_low": -0.050011229155101845,
          "ci_high": 0.1470318073749831,
          "p_value": 0.66155119667931,
          "chance_to_win": 0.9567599783407522,
          "cuped_applied": true,
          "variance_reduction": 0.37402163994820037,
          "sequential": true,
          "error": null,
          "p_value_adjusted": 0.66155119667931
        },
        {
          "variation": "broken",
          "difference_type": "relative",
          "estimate": null,
          "ci_low": null,
          "ci_high": null,
          "p_value": null,
          "chance_to_win": null,
          "cuped_applied": true,
          "variance_reduction": null,
          "sequential": true,
          "error": "too_few_users",
          "p_value_adjusted": null
        }
      ]
    }
  ]
}
"""


def _run_text(payload: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["analyze"], io.StringIO(json.dumps(payload)), out)
    return code, out.getvalue(), err.getvalue()


def test_cli__family_request__pinned_output_text() -> None:
    assert _run_text(PINNED_REQUEST) == (0, PINNED_OUTPUT, "")


def test_cli__family_request_with_nan__pinned_error_text() -> None:
    payload = copy.deepcopy(PINNED_REQUEST)
    payload["analyses"][1]["variations"][2]["main_sum"] = math.nan
    assert _run_text(payload) == (2, "", "error: analyses[1].variations[2].main_sum: must be finite\n")


def test_analyze_records__family_of_records__pinned_output() -> None:
    results = stats.analyze_records(PINNED_REQUEST["analyses"], correction="holm", prefix="analyses[{}].")
    assert results == json.loads(PINNED_OUTPUT)["analyses"]


def test_cli__integer_beyond_a_float__exit_2_naming_field() -> None:
    payload = json.dumps(_analysis(cuped=False)).replace('"main_sum": 53000', '"main_sum": 1' + "0" * 400)
    code, _, err = _run(payload)
    assert code == 2
    assert "error: variations[1].main_sum: must be finite" in err
