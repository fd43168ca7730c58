"""The JSON records path (`analyze_records`) against the typed reference path.

`analyze_records` reads well-formed batches column by column and builds its output dicts
from whole columns. These tests hold it to the reference: every record through
`parse_analysis`, the batch through `analyze_many`, every result through `result_to_dict`.
Outputs must be identical (values, None, error codes, key order and int/float types) and
malformed batches must raise the same error naming the same field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import stats
from stats import batch
from stats.batch import add_input, build_table, new_batch, read_records
from stats.types import ERROR_CODES, NUMERIC_FIELDS, ErrorCode
from tests.unit.stats.factories import random_analysis

KINDS = ["mean", "binomial", "cuped", "cuped_binomial", "ratio", "ratio_cuped"]
Record = dict[str, Any]


def reference(records: list[Any], correction: str | None = None) -> list[dict[str, Any]]:
    parsed = [stats.parse_analysis(r, f"[{k}]") for k, r in enumerate(records)]
    results = stats.analyze_many(parsed, correction=correction)  # type: ignore[arg-type]
    return [stats.result_to_dict(r, with_adjusted=correction is not None) for r in results]


def takes_column_path(records: list[Any]) -> bool:
    """True when the batch is read column-wise, not handed to the per-field parser."""
    return batch._read_columns(records, "[{}].") is not None


def _counted(calls: dict[str, int], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        calls[name] = calls.get(name, 0) + 1
        return fn(*args)

    return wrapper


SLICE = 40


@pytest.fixture(autouse=True)
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read variations a few dozen at a time, so that small batches span several slices."""
    monkeypatch.setattr(batch, "_VARIATIONS_SLICE", SLICE)


def _degenerate(rng: np.random.Generator, record: Record) -> None:
    """Make one comparison of the record undefined in one of the documented ways."""
    arms = record["variations"]
    target = arms[int(rng.integers(1, len(arms)))]
    control = arms[0]
    metric = record["metric"]
    case = str(rng.choice(["no_users", "one_user", "zero_variance", "zero_control_mean", "zero_denominator"]))
    if case == "zero_denominator" and metric != "ratio":
        case = "no_users"
    if case == "zero_control_mean" and metric == "binomial":
        case = "zero_variance"
    if case == "no_users":
        target.update(users=0, main_sum=0.0)
        for f in NUMERIC_FIELDS[2:]:
            if target.get(f) is not None:
                target[f] = 0.0
    elif case == "one_user":
        target["users"] = 1
        if metric == "binomial":
            target["main_sum"] = 1
    elif case == "zero_variance":
        n = target["users"]
        if metric == "binomial":
            target["main_sum"] = n  # everyone converted: p(1 - p) = 0
        else:
            target.update(main_sum=2.0 * n, main_sum_squares=4.0 * n)  # everyone at 2.0
            if metric == "ratio":
                target.update(denominator_sum=float(n), denominator_sum_squares=float(n))
                target["main_denominator_sum_product"] = 2.0 * n
    elif case == "zero_control_mean":
        record["difference_type"] = "relative"
        control["main_sum"] = 0.0  # a mean of exactly zero with some spread
    else:
        control.update(denominator_sum=0.0, denominator_sum_squares=0.0, main_denominator_sum_product=0.0)


def random_record(rng: np.random.Generator, all_settings: bool, messy: bool) -> Record:
    """A valid record in one of the many shapes JSON allows.

    all_settings: every setting given (else each may be left to its default).
    messy: explicit nulls and extra columns in the variations (else only their key order
    and int/float types vary).
    """
    kind = KINDS[int(rng.integers(len(KINDS)))]
    a = random_analysis(rng, kind, arms=int(rng.integers(2, 5)))
    variations = []
    for v in a.variations:
        row: Record = {"name": v.name}
        for f in NUMERIC_FIELDS:
            value = getattr(v, f)
            if value is None:
                if messy and rng.random() < 0.15:
                    row[f] = None  # an explicit null reads as absent
                continue
            if f == "users" and rng.random() < 0.3:
                value = float(value)
            elif f == "main_sum" and kind.endswith("binomial") and rng.random() < 0.5:
                value = int(value)
            row[f] = value
        if messy and rng.random() < 0.2:
            row["segment"] = "all"  # extra warehouse columns are ignored
        if rng.random() < 0.2:
            row = dict(sorted(row.items(), key=lambda _: rng.random()))  # any key order
        variations.append(row)
    record: Record = {"metric": a.metric, "variations": variations}
    arms = len(variations)
    options: dict[str, Callable[[], Any]] = {
        "alpha": lambda: float(rng.choice([0.01, 0.05, 0.1])),
        "difference_type": lambda: str(rng.choice(["relative", "absolute"])),
        "sequential": lambda: bool(rng.random() < 0.3),
        "sequential_tuning_parameter": lambda: rng.choice([5000, 2500.0]).item(),
        "cuped": lambda: a.cuped,
        "weights": lambda: [None, [1] * arms, [1.0 / arms] * arms, [2.0, *([1] * (arms - 2)), 0]][int(rng.integers(4))],
    }
    for key, make in options.items():
        if all_settings or rng.random() < 0.6 or (key == "cuped" and a.cuped):
            record[key] = make()
    if rng.random() < 0.25:
        _degenerate(rng, record)
    return record


def random_batch(seed: int, count: int, all_settings: bool, messy: bool = True) -> list[Record]:
    rng = np.random.default_rng(seed)
    return [random_record(rng, all_settings, messy) for _ in range(count)]


@pytest.mark.parametrize(("all_settings", "messy"), [(True, False), (False, True)], ids=["tidy", "messy"])
@pytest.mark.parametrize("correction", [None, "holm", "bh"])
def test_analyze_records__random_batches__identical_to_reference(
    correction: str | None, all_settings: bool, messy: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = random_batch(101 + (correction is None) + 2 * all_settings, 4 * SLICE + 37, all_settings, messy)
    calls: dict[str, int] = {}
    monkeypatch.setattr(batch, "_by_field", _counted(calls, "_by_field", batch._by_field))
    assert takes_column_path(records)
    # Tidy variations are read by layout; messy ones (nulls, extra columns) have too many
    # layouts and are read field by field.
    assert ("_by_field" in calls) == messy
    fast = stats.analyze_records(records, correction=correction)  # type: ignore[arg-type]
    slow = reference(records, correction)
    assert fast == slow
    # Same key order, same int/float types, no NaN: the JSON text is the same too.
    assert json.dumps(fast, allow_nan=False) == json.dumps(slow, allow_nan=False)
    comparisons = [c for r in fast for c in r["comparisons"]]
    seen = {c["error"] for c in comparisons}
    assert set(ERROR_CODES) - {ErrorCode.NUMERICAL_ERROR} <= seen
    undefined = [c for c in comparisons if c["error"] is not None]
    assert all(c[k] is None for c in undefined for k in ("estimate", "ci_low", "ci_high", "p_value", "chance_to_win"))


def test_analyze_records__batch_over_several_real_slices__identical_to_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.undo()
    records = random_batch(99, batch._VARIATIONS_SLICE + 3, all_settings=False)
    assert takes_column_path(records)
    assert stats.analyze_records(records, correction="bh") == reference(records, "bh")


def test_analyze_records__one_record__identical_to_reference() -> None:
    for seed in range(30):
        records = random_batch(seed, 1, all_settings=bool(seed % 2))
        assert stats.analyze_records(records) == reference(records)


def test_analyze_records__huge_user_counts__same_ints_as_parser() -> None:
    arms = [
        {"name": n, "users": 2**64 + k, "main_sum": 3.0e19 + k, "main_sum_squares": 1.0e20} for k, n in enumerate("ab")
    ]
    records = [{"metric": "mean", "variations": arms}]
    fast, slow = stats.analyze_records(records), reference(records)
    assert fast == slow
    assert [v["users"] for v in fast[0]["variations"]] == [int(float(2**64)), int(float(2**64 + 1))]


def test_read_records__values_match_reference_table() -> None:
    records = random_batch(7, 300, all_settings=False)
    typed = new_batch()
    for k, r in enumerate(records):
        add_input(typed, stats.parse_analysis(r, f"[{k}]"), f"[{k}].")
    expected = build_table(typed, "[{}].")
    got = read_records(records, "[{}].")
    np.testing.assert_array_equal(got.table.values, expected.values)
    np.testing.assert_array_equal(got.table.weights, expected.weights)
    assert got.names == typed.names
    for a, b in zip(got.table.settings, expected.settings, strict=True):
        np.testing.assert_array_equal(a, b)


# Corruptions: (what, where, value). where "record" sets a setting, "arm" a variation field;
# the value DELETE removes the key.
class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()
CORRUPTIONS: list[tuple[str, str, Any]] = [
    ("users", "arm", True),
    ("users", "arm", "100"),
    ("users", "arm", None),
    ("users", "arm", -1),
    ("users", "arm", 2.5),
    ("users", "arm", DELETE),
    ("main_sum", "arm", None),
    ("main_sum", "arm", math.nan),
    ("main_sum", "arm", math.inf),
    ("main_sum", "arm", "x"),
    ("main_sum", "arm", DELETE),
    ("main_sum_squares", "arm", True),
    ("main_sum_squares", "arm", math.nan),
    ("covariate_sum", "arm", 1.0),
    ("denominator_pre_sum", "arm", -math.inf),
    ("name", "arm", ""),
    ("name", "arm", 3),
    ("name", "arm", DELETE),
    ("metric", "record", "median"),
    ("metric", "record", ["mean"]),
    ("metric", "record", DELETE),
    ("difference_type", "record", "ratio"),
    ("difference_type", "record", None),
    ("alpha", "record", 0),
    ("alpha", "record", 1.5),
    ("alpha", "record", True),
    ("alpha", "record", None),
    ("alpha", "record", math.nan),
    ("sequential", "record", 1),
    ("cuped", "record", "yes"),
    ("sequential_tuning_parameter", "record", -5),
    ("sequential_tuning_parameter", "record", "5000"),
    ("weights", "record", [1]),
    ("weights", "record", "even"),
    ("alpah", "record", 0.05),
    ("variations", "record", {}),
    ("variations", "record", []),
    ("variations", "record", ["a", "b"]),
    ("variations", "record", DELETE),
]


def _corrupt(record: Record, rng: np.random.Generator, key: str, where: str, value: Any) -> None:
    target = record
    if where == "arm":
        target = record["variations"][int(rng.integers(len(record["variations"])))]
    if value is DELETE:
        target.pop(key, None)
    else:
        target[key] = value


def _outcome(fn: Callable[[], Any]) -> tuple[Any, ...]:
    """The result, or the exception's type, field and message."""
    try:
        return ("result", fn())
    except Exception as exc:
        return ("raised", type(exc), getattr(exc, "field", None), str(exc))


@pytest.mark.parametrize(("key", "where", "value"), CORRUPTIONS, ids=[f"{k}={v!r}" for k, _, v in CORRUPTIONS])
def test_analyze_records__malformed_batch__same_error_as_parser(key: str, where: str, value: Any) -> None:
    seed = next(i for i, c in enumerate(CORRUPTIONS) if c[:2] == (key, where) and c[2] is value)
    rng = np.random.default_rng(seed)
    records = random_batch(200 + seed, 2 * SLICE + 7, all_settings=bool(seed % 2))
    _corrupt(records[int(rng.integers(len(records)))], rng, key, where, value)
    expected = _outcome(lambda: reference(records))
    assert expected[0] == "raised" or key == "covariate_sum"  # a covariate may make a valid record
    assert _outcome(lambda: stats.analyze_records(records)) == expected


def _is(metric: str) -> Callable[[Record], bool]:
    return lambda r: r["metric"] == metric


def _has_covariate(r: Record) -> bool:
    return r["variations"][1].get("covariate_sum") is not None


@pytest.mark.parametrize(
    ("applies", "change"),
    [
        pytest.param(_is("binomial"), lambda r: r["variations"][1].update(main_sum=10**9), id="converters"),
        pytest.param(_is("ratio"), lambda r: r["variations"][0].pop("denominator_sum"), id="ratio-denominator"),
        pytest.param(_is("mean"), lambda r: r["variations"][0].pop("main_sum_squares"), id="mean-squares"),
        pytest.param(_is("mean"), lambda r: r.update(weights=[0] * len(r["variations"])), id="zero-weights"),
        pytest.param(_is("mean"), lambda r: r.update(weights=[-1] * len(r["variations"])), id="negative-weights"),
        pytest.param(_is("mean"), lambda r: r["variations"][1].update(main_sum=10**400), id="int-beyond-float"),
        pytest.param(_has_covariate, lambda r: r["variations"][1].pop("covariate_sum"), id="covariate-in-one-arm"),
    ],
)
def test_analyze_records__invalid_values__same_error_as_parser(
    applies: Callable[[Record], bool], change: Callable[[Record], Any]
) -> None:
    records = random_batch(5, 3 * SLICE, all_settings=True)
    change(next(r for r in records[SLICE + 5 :] if applies(r)))
    expected = _outcome(lambda: reference(records))
    assert expected[0] == "raised"
    assert _outcome(lambda: stats.analyze_records(records)) == expected
