"""Rules that change nothing (`flags.engine.advice`)."""

from __future__ import annotations

from typing import Any

from flags.engine import moot_rules


def _rollout(variant: str = "on", coverage: float = 0.2, **fields: Any) -> dict[str, Any]:
    return {"kind": "rollout", "variant": variant, "coverage": coverage, "segments": ["eu-customers"], **fields}


def test_moot_rules__rollout_of_the_default__moot_with_the_off_variant_suggested() -> None:
    (moot,) = moot_rules(default_variant="on", off_variant="off", rules=[_rollout()])

    assert (moot.position, moot.variant, moot.percentage) == (1, "on", True)
    assert moot.message == (
        "Rule 1 (serves on to 20% of users by id when in segment eu-customers) hands out on, but the units it "
        "leaves out get on too: it is also what the flag serves when no rule matches, so the rollout changes "
        "nothing. To serve on only to the units the rule picks, set the default to off."
    )


def test_moot_rules__rollout_of_another_variant__nothing() -> None:
    assert moot_rules(default_variant="off", off_variant="off", rules=[_rollout()]) == []


def test_moot_rules__later_rule_serves_another_variant__rollout_is_not_moot() -> None:
    # The rollout keeps 20% of the users away from the experiment after it.
    rules = [_rollout(), {"kind": "experiment", "variations": ["off", "on"], "weights": [0.5, 0.5]}]

    assert moot_rules(default_variant="on", rules=rules) == []


def test_moot_rules__excluding_rule_before_a_rollout__not_moot() -> None:
    rules = [{"kind": "force", "variant": "off", "segments": ["internal"]}, _rollout()]

    assert moot_rules(default_variant="off", rules=rules) == []


def test_moot_rules__trailing_rules_all_serve_the_default__each_is_moot_in_order() -> None:
    rules = [_rollout("large", 0.5), {"kind": "force", "variant": "standard", "condition": {"plan": "pro"}},
             _rollout("standard", 0.1), {"kind": "force", "variant": "large", "enabled": False}]

    found = moot_rules(default_variant="standard", off_variant="standard", rules=rules)

    assert [(m.position, m.percentage) for m in found] == [(2, False), (3, True)]
    assert found[0].message.endswith("set the default to another variant.")
    assert "serves standard, which is also what the flag serves when no rule matches" in found[0].message


def test_moot_rules__partial_force_rule__read_as_a_rollout() -> None:
    (moot,) = moot_rules(default_variant="on", rules=[{"kind": "force", "variant": "on", "coverage": 0.3}])

    assert moot.percentage


def test_moot_rules__disabled_rule_and_no_rules__nothing() -> None:
    assert moot_rules(default_variant="on", rules=[_rollout(enabled=False)]) == []
    assert moot_rules(default_variant="on", rules=[]) == []
