"""The models and the migrations agree: no change is waiting for a migration."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_makemigrations__models_unchanged__nothing_to_write(db: Any) -> None:
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit as exc:  # --check exits with 1 when a migration is missing
        pytest.fail(f"Models changed without a migration:\n{out.getvalue()}\n(exit {exc.code})")
