from __future__ import annotations

import pytest

from config.errors import ValidationFailed, error_lines, error_path_label, error_text


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("steps[1].percent", "Step 2, percent"),
        ("variants[0].key", "Variant 1, key"),
        ("rules[2].condition", "Rule 3, condition"),
        ("rules[2]", "Rule 3"),
        ("prerequisites[0].flag", "Prerequisite 1, flag"),
        ("rules[0].prerequisites[1].condition", "Rule 1, prerequisite 2, condition"),
        ("funnel_steps[3]", "Funnel step 4"),
        ("variations[1].weight", "Variation 2, weight"),
        ("hash_attribute", "Hash attribute"),
        ("rules[r_1a].variant", "Rule r_1a, variant"),
    ],
)
def test_error_path_label__list_items_counted_from_one(path: str, label: str) -> None:
    assert error_path_label(path) == label


def test_error_lines__every_message_after_the_words_of_its_path() -> None:
    details = {"steps[1].percent": ["Each step must serve more units than the last."],
               "variations": "Weights must sum to 1."}
    assert error_lines(details) == ["Step 2, percent: Each step must serve more units than the last.",
                                    "Variations: Weights must sum to 1."]
    assert error_lines({"experiments": ["a", "b"], "rules": ["r1"]}, names=True) == [
        "Experiments: a, b.", "Rules: r1."]
    assert error_lines(None) == [] and error_lines(["not", "a", "mapping"]) == []


def test_error_text__message_then_details() -> None:
    error = ValidationFailed("The ramp is not valid.", details={"steps[0].percent": ["A step is above 0."]})
    assert error_text(error) == "The ramp is not valid. Step 1, percent: A step is above 0."
    assert error_text(ValidationFailed("Nothing to add.")) == "Nothing to add."
