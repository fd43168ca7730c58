"""Rule validation agrees with evaluation: a force rule with a coverage is a hashed rollout."""

from __future__ import annotations

from flags.engine.validation import check_rule

VARIANTS = ("off", "on")


def test_check_rule__force_with_partial_coverage__needs_a_hash_attribute() -> None:
    rule = {"kind": "force", "variant": "on", "coverage": 0.5, "hash_attribute": ""}
    assert "hash_attribute" in check_rule(rule, variant_keys=VARIANTS, segment_keys=())
    assert check_rule({**rule, "hash_attribute": "id"}, variant_keys=VARIANTS, segment_keys=()) == {}
    full = {"kind": "force", "variant": "on", "coverage": 1.0, "hash_attribute": ""}
    assert check_rule(full, variant_keys=VARIANTS, segment_keys=()) == {}


def test_check_rule__holdout__only_known_on_experiments_and_full_force_rules() -> None:
    experiment = {"kind": "experiment", "variations": ["off", "on"], "weights": [0.5, 0.5], "hash_attribute": "id"}
    assert check_rule({**experiment, "holdout": "h"}, variant_keys=VARIANTS, segment_keys=(), holdout_keys=("h",)) == {}
    unknown = check_rule({**experiment, "holdout": "x"}, variant_keys=VARIANTS, segment_keys=(), holdout_keys=("h",))
    assert unknown == {"holdout": ["Unknown holdout 'x'."]}
    # A force rule with a holdout serves the holdout's own units (what they had before shipping).
    forced = check_rule({"kind": "force", "variant": "on", "holdout": "h"}, variant_keys=VARIANTS, segment_keys=(),
                        holdout_keys=("h",))
    assert forced == {}
    partial = check_rule({"kind": "force", "variant": "on", "holdout": "h", "coverage": 0.5, "hash_attribute": "id"},
                         variant_keys=VARIANTS, segment_keys=(), holdout_keys=("h",))
    assert list(partial) == ["holdout"]
    rollout = check_rule({"kind": "rollout", "variant": "on", "holdout": "h", "coverage": 0.5, "hash_attribute": "id"},
                         variant_keys=VARIANTS, segment_keys=(), holdout_keys=("h",))
    assert list(rollout) == ["holdout"]


def test_check_rule__passthrough__some_variations_of_an_experiment_rule() -> None:
    experiment = {"kind": "experiment", "variations": ["off", "on"], "weights": [0.5, 0.5], "hash_attribute": "id"}
    assert check_rule({**experiment, "passthrough": ["off"]}, variant_keys=VARIANTS, segment_keys=()) == {}
    every = check_rule({**experiment, "passthrough": ["off", "on"]}, variant_keys=VARIANTS, segment_keys=())
    assert every == {"passthrough": ["Passthrough variations are some, not all, of the rule's variations."]}
    forced = check_rule({"kind": "force", "variant": "on", "passthrough": ["on"]}, variant_keys=VARIANTS,
                        segment_keys=())
    assert forced == {"passthrough": ["Only experiment rules have passthrough variations."]}
