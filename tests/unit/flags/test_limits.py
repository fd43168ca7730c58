"""Configuration limits: validation refuses what is beyond them, naming the field, without
recursing into it; compilation and evaluation stay bounded for rows written around validation."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from flags.engine import limits
from flags.engine.conditions import ConditionTooComplex, compile_condition, eval_condition, validate_condition
from flags.engine.evaluation import evaluate, evaluate_all
from flags.engine.types import Feature, ParentCondition, Reason, Rule, Snapshot, Source
from flags.engine.validation import (
    check_condition,
    check_prerequisites,
    check_segment_ids,
    check_variants,
    find_cycle,
    longest_chain_through,
)
from flags.mappers import NEVER_MATCHES, snapshot_from_rows
from flags.models import Flag, FlagState, Variant
from flags.models import Rule as RuleRow


def and_nested(levels: int) -> dict[str, Any]:
    """`{"plan": "pro"}` inside `levels` single-item `$and` lists: 1 + 2 * levels deep."""
    condition: dict[str, Any] = {"plan": "pro"}
    for _ in range(levels):
        condition = {"$and": [condition]}
    return condition


def not_nested(depth: int) -> dict[str, Any]:
    """`{"plan": "pro"}` under `$not`s (an even count, so it still matches pro): `depth` deep."""
    condition: dict[str, Any] = {"plan": "pro"}
    for _ in range(depth - 1):
        condition = {"$not": condition}
    return condition


def value_nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# --- conditions: validation ------------------------------------------------------------------


def test_check_condition__at_the_depth_limit__valid() -> None:
    condition = not_nested(limits.CONDITION_MAX_DEPTH - 1)
    assert check_condition(condition) == {}
    assert eval_condition(condition, {"plan": "pro"}) is True


@pytest.mark.parametrize("depth", [limits.CONDITION_MAX_DEPTH + 1, 300, 5000])
def test_check_condition__deeper_than_the_limit__one_message_naming_the_field(depth: int) -> None:
    errors = check_condition(not_nested(depth), "rules[0].condition")
    assert errors == {"rules[0].condition": [
        f"condition: nested deeper than {limits.CONDITION_MAX_DEPTH} levels (objects and lists)."]}


def test_check_condition__300_levels_of_and__refused_not_a_recursion_error() -> None:
    errors = check_condition(and_nested(300))
    assert list(errors) == ["condition"] and "nested deeper than" in errors["condition"][0]


def test_check_condition__too_many_tests__refused() -> None:
    many = {f"attr{i}": i for i in range(limits.CONDITION_MAX_KEYS + 1)}
    assert check_condition(many) == {"condition": [
        f"condition: more than {limits.CONDITION_MAX_KEYS} attribute tests and operators."]}
    assert check_condition(dict(list(many.items())[: limits.CONDITION_MAX_KEYS])) == {}


def test_check_condition__long_list__refused_with_the_segment_hint() -> None:
    members = [f"u-{i}" for i in range(limits.CONDITION_MAX_LIST + 1)]
    errors = check_condition({"$or": [{"plan": "pro"}, {"id": {"$in": members}}]})
    assert errors == {"condition": [
        f"condition.$or[1].id.$in: a list of more than {limits.CONDITION_MAX_LIST:,} values "
        "(put long lists of ids in an id-list segment)."]}
    assert check_condition({"id": {"$in": members[:-1]}}) == {}


def test_check_condition__long_string__refused_naming_where() -> None:
    long = "x" * (limits.CONDITION_MAX_STRING + 1)
    assert check_condition({"email": {"$regex": long}}) == {"condition": [
        f"condition.email.$regex: longer than {limits.CONDITION_MAX_STRING:,} characters."]}
    assert check_condition({long: 1}) == {"condition": [
        f"condition: an attribute name longer than {limits.CONDITION_MAX_STRING:,} characters."]}


def test_check_condition__too_large_as_json__refused() -> None:
    lists = {f"a{i}": {"$in": ["x" * 900] * 100} for i in range(limits.CONDITION_MAX_BYTES // 90_000 + 1)}
    assert check_condition(lists) == {"condition": [
        f"condition: larger than {limits.CONDITION_MAX_BYTES:,} bytes as JSON."]}


def test_validate_condition__typical_growthbook_conditions__within_every_limit() -> None:
    condition = {
        "$and": [
            {"country": {"$in": ["DE", "FR", "NL"]}},
            {"$or": [{"plan": "pro"}, {"email": {"$regex": "@example\\.com$"}}]},
            {"$not": {"tags": {"$elemMatch": {"$eq": "internal"}}}},
            {"appVersion": {"$vgte": "4.2.0"}, "id": {"$inGroup": "beta"}},
        ]
    }
    assert limits.condition_limit_errors(condition) == []
    assert validate_condition(condition) == []


# --- conditions: compilation ------------------------------------------------------------------


def test_compile_condition__at_the_compile_bound__compiles_and_evaluates() -> None:
    condition = not_nested(limits.COMPILE_MAX_DEPTH - 1)
    assert compile_condition(condition)({"plan": "pro"}, {}) is True


@pytest.mark.parametrize("depth", [limits.COMPILE_MAX_DEPTH + 1, 300, 20_000])
def test_compile_condition__beyond_the_compile_bound__a_clear_exception(depth: int) -> None:
    with pytest.raises(ConditionTooComplex, match=f"nested deeper than {limits.COMPILE_MAX_DEPTH} levels"):
        compile_condition(not_nested(depth))
    with pytest.raises(ConditionTooComplex):
        Rule(id="r", condition=and_nested(depth), force=True)


def test_never_matches__matches_nobody_here_and_in_growthbook() -> None:
    core = pytest.importorskip("growthbook.core")
    for attributes in ({}, {"id": "u-1", "plan": "pro"}):
        assert eval_condition(NEVER_MATCHES, attributes) is False
        assert core.evalCondition(attributes, dict(NEVER_MATCHES)) is False


def _row_snapshot(*rows: tuple[Flag, list[RuleRow]], prerequisites: Any = ()) -> Snapshot:
    variants = [Variant(key="off", value=False), Variant(key="on", value=True)]
    return snapshot_from_rows(
        environment="production", version=1, updated_at=datetime(2026, 5, 1, tzinfo=UTC),
        flags=[(flag, FlagState(enabled=True, default_variant="off", off_variant="off"), variants, rules)
               for flag, rules in rows],
        segments={},
    )


def test_snapshot_from_rows__stored_condition_too_deep__that_rule_never_matches_the_rest_serve(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = RuleRow(uid="r_deep", kind="force", variant="on", condition=and_nested(500), coverage=1.0)
    good = RuleRow(uid="r_ok", kind="force", variant="on", condition={"plan": "pro"}, coverage=1.0)
    snap = _row_snapshot((Flag(key="mixed", value_type="boolean"), [bad, good]),
                         (Flag(key="other", value_type="boolean"), [good]))

    assert snap.features["mixed"].rules[0].condition == NEVER_MATCHES
    assert evaluate(snap, "mixed", {"plan": "pro"}).rule_id == "r_ok"
    assert evaluate(snap, "mixed", {"plan": "free"}).value is False
    assert evaluate(snap, "other", {"plan": "pro"}).value is True
    assert "Rule r_deep of flag mixed never matches" in caplog.text


# --- regular expressions ----------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|a)*b", "(a|aa)+$", "^(([a-z])+.)+[A-Z]([a-z])+$"])
def test_regex__catastrophic_pattern__evaluates_in_milliseconds(pattern: str) -> None:
    matcher = compile_condition({"name": {"$regex": pattern}})
    text = "a" * 26 + "!"
    matcher({"name": text}, {})  # the first call pays for building the automaton
    started = time.perf_counter()
    result = matcher({"name": text * 1000}, {})
    elapsed = time.perf_counter() - started
    assert result is False
    assert elapsed < 0.05, f"{elapsed * 1000:.1f} ms"


def test_regex__one_evaluation_through_the_flag__under_50_ms() -> None:
    feature = Feature("f", False, rules=(Rule(condition={"name": {"$regex": "(a+)+$"}}, force=True),))
    snapshot = Snapshot(environment="e", version=1, features={"f": feature})
    started = time.perf_counter()
    result = evaluate(snapshot, "f", {"id": "u", "name": "a" * 26 + "!"})
    assert time.perf_counter() - started < 0.05
    assert result.value is False


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("^hello", "hello world", True),
        ("@example\\.com$", "ann@example.com", True),
        ("@example\\.com$", "ann@example.com\n", False),  # JavaScript's $ is the end of the text
        ("\\d{3}-\\d{4}", "call 555-1234", True),
        ("\\u00e9t\\u00e9", "été", True),
        ("a\\cJb", "a\nb", True),
        ("(?<year>\\d{4})-\\d{2}", "2026-05", True),
        ("\\/path\\/", "/path/", True),
        ("caf.", "café", True),
        ("[^]", "x", False),  # not RE2 syntax: refused at validation, never matches
    ],
)
def test_regex__javascript_patterns__match_as_in_javascript(pattern: str, text: str, expected: bool) -> None:
    assert eval_condition({"v": {"$regex": pattern}}, {"v": text}) is expected


def test_regexi__case_insensitive() -> None:
    assert eval_condition({"v": {"$regexi": "^MOBILE"}}, {"v": "mobile safari"}) is True
    assert eval_condition({"v": {"$regex": "^MOBILE"}}, {"v": "mobile safari"}) is False


def test_regex__lone_surrogate_in_the_text__no_crash() -> None:
    assert eval_condition({"v": {"$regex": "a"}}, {"v": "\ud800a"}) is True


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(a)\\1", "condition.v.$regex: backreferences such as \\1 are not supported (patterns are matched by RE2, "
                   "in time linear in the text)."),
        ("(?<n>a)\\k<n>", "condition.v.$regex: backreferences such as \\1 are not supported"),
        ("foo(?=bar)", "condition.v.$regex: lookaheads and lookbehinds such as (?= are not supported"),
        ("(?<!x)y", "condition.v.$regex: lookaheads and lookbehinds such as (?= are not supported"),
        ("a{1001}", "condition.v.$regex: invalid regular expression (invalid repetition size: {1001})."),
        ("(", "condition.v.$regex: invalid regular expression (missing ): ()."),
    ],
)
def test_validate_condition__pattern_re2_cannot_take__refused_with_a_clear_message(pattern: str, message: str) -> None:
    errors = validate_condition({"v": {"$regex": pattern}})
    assert len(errors) == 1 and errors[0].startswith(message), errors
    assert eval_condition({"v": {"$regex": pattern}}, {"v": "aa"}) is False


# --- values, segments, prerequisites ------------------------------------------------------------


def test_check_variants__json_value_at_and_over_the_depth_limit() -> None:
    at = [{"key": "a", "value": value_nested(limits.VALUE_MAX_DEPTH)}]
    assert check_variants("json", at) == {}
    over = [{"key": "a", "value": {}}, {"key": "b", "value": value_nested(limits.VALUE_MAX_DEPTH + 1)}]
    assert check_variants("json", over) == {
        "variants[1].value": [f"nested deeper than {limits.VALUE_MAX_DEPTH} levels (objects and lists)."]}
    assert list(check_variants("json", [{"key": "a", "value": value_nested(100_000)}])) == ["variants[0].value"]


def test_check_variants__value_larger_than_the_limit__refused() -> None:
    big = {"text": "x" * limits.VALUE_MAX_BYTES}
    assert check_variants("json", [{"key": "a", "value": big}]) == {
        "variants[0].value": [f"larger than {limits.VALUE_MAX_BYTES:,} bytes as JSON."]}
    assert list(check_variants("string", [{"key": "a", "value": "é" * limits.VALUE_MAX_BYTES}])) == [
        "variants[0].value"]


def test_check_segment_ids__count_and_length_limits() -> None:
    assert check_segment_ids([f"u-{i}" for i in range(limits.SEGMENT_MAX_IDS)]) == {}
    assert check_segment_ids(["u"] * (limits.SEGMENT_MAX_IDS + 1)) == {
        "ids": [f"At most {limits.SEGMENT_MAX_IDS:,} ids (this list has {limits.SEGMENT_MAX_IDS + 1:,})."]}
    assert check_segment_ids(["ok", "x" * (limits.SEGMENT_ID_MAX_LENGTH + 1)]) == {
        "ids": [f"ids[1]: longer than {limits.SEGMENT_ID_MAX_LENGTH} characters."]}
    assert check_segment_ids(["a", True]) == {"ids": ["Give a list of ids (strings or numbers)."]}


def test_check_prerequisites__too_many_or_too_deep__refused() -> None:
    many = [{"flag": f"f{i}"} for i in range(limits.PREREQUISITES_MAX + 1)]
    known = [f"f{i}" for i in range(limits.PREREQUISITES_MAX + 1)]
    assert check_prerequisites(many, flag_key="x", known_flags=known) == {
        "prerequisites": [f"At most {limits.PREREQUISITES_MAX} prerequisites."]}
    deep = [{"flag": "f0", "condition": {"value": value_nested(400)}}]
    errors = check_prerequisites(deep, flag_key="x", known_flags=known)
    assert list(errors) == ["prerequisites[0].condition"]
    assert "nested deeper than" in errors["prerequisites[0].condition"][0]


def test_find_cycle__chain_of_5000_flags__answers_without_recursion() -> None:
    edges = {f"f{i}": [f"f{i + 1}"] for i in range(5000)}
    assert find_cycle(edges) is None
    edges["f5000"] = ["f0"]
    cycle = find_cycle(edges)
    assert cycle is not None and cycle[0] == cycle[-1] == "f0" and len(cycle) == 5002


def test_find_cycle__same_answers_as_a_depth_first_search() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["b"]}) == ["b", "c", "b"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None


def test_longest_chain_through__counts_requirements_above_and_below() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["d"], "x": ["c"], "d": []}
    assert longest_chain_through(edges, "c") == ["a", "b", "c", "d"]
    assert longest_chain_through(edges, "d") == ["a", "b", "c", "d"]
    assert longest_chain_through({"lonely": []}, "lonely") == ["lonely"]
    long = {f"f{i}": [f"f{i + 1}"] for i in range(3000)}
    assert len(longest_chain_through(long, "f1500")) == 3001


# --- evaluation --------------------------------------------------------------------------------


def _chain(length: int) -> Snapshot:
    """f0 requires f1 requires ... f<length>, which is on."""
    features = {f"f{length}": Feature(f"f{length}", True)}
    for i in range(length):
        gate = ParentCondition(f"f{i + 1}", {"value": True}, gate=True)
        features[f"f{i}"] = Feature(f"f{i}", True, rules=(Rule(parent_conditions=(gate,)),))
    return Snapshot(environment="e", version=1, features=features)


def test_evaluate__prerequisite_chain_at_the_limit__served() -> None:
    assert evaluate(_chain(limits.PREREQUISITE_MAX_CHAIN), "f0", {"id": "u"}).value is True


def test_evaluate__prerequisite_chain_of_1000__an_error_for_the_chain_not_a_crash() -> None:
    snapshot = _chain(1000)
    result = evaluate(snapshot, "f0", {"id": "u"})
    assert (result.reason, result.source) == (Reason.ERROR, Source.CYCLIC_PREREQUISITE)
    everything = evaluate_all(snapshot, {"id": "u"})
    assert everything["f1000"].value is True
    assert everything["f990"].value is True
