from __future__ import annotations

import pytest

from config.errors import error_path_label


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
