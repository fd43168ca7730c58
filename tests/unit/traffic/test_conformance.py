"""GrowthBook's shared SDK cases for hashing and bucketing (../shared/conformance)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance import SHARED_ROOT, shared_json, shared_path
from traffic.assignment.bucketing import choose_variation, get_bucket_ranges, get_equal_weights, in_namespace
from traffic.assignment.hashing import gb_hash

CASES: dict[str, Any] = shared_json("conformance/growthbook-cases.json")
TOLERANCE = 1e-6


def _params(kind: str) -> list[Any]:
    return [pytest.param(*case, id=str(case[0])) for case in CASES[kind]]


def test_conformance_file__spec_version__is_the_one_we_target() -> None:
    assert CASES["specVersion"].split(".")[:2] == ["0", "8"]


@pytest.mark.parametrize(("seed", "value", "version", "expected"), _params("hash"))
def test_gb_hash__case__matches_growthbook(seed: str, value: str, version: int, expected: float | None) -> None:
    result = gb_hash(seed, value, version)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=TOLERANCE)


@pytest.mark.parametrize(("name", "args", "expected"), _params("getBucketRange"))
def test_get_bucket_ranges__case__matches_growthbook(name: str, args: list[Any], expected: list[list[float]]) -> None:
    n, coverage, weights = args
    ranges = get_bucket_ranges(n, coverage, weights)
    assert len(ranges) == len(expected)
    for got, want in zip(ranges, expected, strict=True):
        assert got == pytest.approx(tuple(want), abs=TOLERANCE)


@pytest.mark.parametrize(("name", "n", "ranges", "expected"), _params("chooseVariation"))
def test_choose_variation__case__matches_growthbook(
    name: str, n: float, ranges: list[list[float]], expected: int
) -> None:
    assert choose_variation(n, [(r[0], r[1]) for r in ranges]) == expected


@pytest.mark.parametrize(("name", "unit", "namespace", "expected"), _params("inNamespace"))
def test_in_namespace__case__matches_growthbook(name: str, unit: str, namespace: list[Any], expected: bool) -> None:
    assert in_namespace(unit, namespace) is expected


@pytest.mark.parametrize(("n", "expected"), [pytest.param(*c, id=str(c[0])) for c in CASES["getEqualWeights"]])
def test_get_equal_weights__case__matches_growthbook(n: int, expected: list[float]) -> None:
    assert get_equal_weights(n) == pytest.approx(expected, abs=TOLERANCE)


def test_shared_path__missing_file_outside_ci__skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no-such-file\.json is missing"):
        shared_path("conformance/no-such-file.json")


def test_shared_path__missing_file_in_ci__fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required when CI=true"):
        shared_path("conformance/no-such-file.json")


def test_shared_path__present_file__is_beside_the_project_root() -> None:
    path = shared_path("conformance/growthbook-cases.json")
    assert path == SHARED_ROOT / "conformance" / "growthbook-cases.json"
    assert path.is_file()
