"""Access to the shared reference material that sits beside the project.

CI checks the project out next to a ``shared/`` directory holding third-party
test vectors (``shared/conformance``) and protocol descriptions
(``shared/protocols``). Tests read them in place, never from a copy in the
repository. A user's clone usually lacks them: those tests then skip with the
reason, except under ``CI=true``, where a missing file is a failure.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_ROOT = PROJECT_ROOT.parent / "shared"


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def shared_path(relative: str) -> Path:
    """``<project root>/../shared/<relative>``; skips the caller (a test, or a
    whole module at import time) when it is missing, or fails under ``CI=true``."""
    path = SHARED_ROOT / relative
    if not path.exists():
        message = f"{path} is missing: the shared reference files are expected beside the project root"
        if running_in_ci():
            pytest.fail(message + " (required when CI=true)", pytrace=False)
        pytest.skip(message, allow_module_level=True)
    return path


@cache
def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def shared_json(relative: str) -> Any:
    """Parsed JSON of a shared file, with the same skip-or-fail rule as :func:`shared_path`."""
    return _load(shared_path(relative))
