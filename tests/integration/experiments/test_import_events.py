"""`manage.py import_events`: history from CSV and Parquet into the events table, through the
events API's validation and de-duplication; rejected rows named by line or row; a second run
adds nothing; the exit status says whether anything was rejected."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from base.models import Environment
from experiments.models import Event

pytestmark = pytest.mark.django_db

NOW = datetime.now(tz=UTC).replace(microsecond=0)


def _run(path: Path, *args: str, **options: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_events", str(path), *args, stdout=out, stderr=err, **options)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue() + str(exc)
    return 0, out.getvalue(), err.getvalue()


CSV = f"""id,unit_id,timestamp,name,value,properties
h-1,u-1,{(NOW - timedelta(days=400)).isoformat()},purchase,19.5,
h-2,u-1,{int((NOW - timedelta(days=200)).timestamp() * 1000)},purchase,,"{{""sku"": ""a""}}"
h-3,u-2,{(NOW - timedelta(days=500)).isoformat()},purchase,3,
h-4,u-2,{(NOW + timedelta(days=1)).isoformat()},purchase,3,
h-5,u-3,yesterday,purchase,3,
h-6,u-3,{(NOW - timedelta(days=2)).isoformat()},purchase,lots,
h-1,u-9,{(NOW - timedelta(days=3)).isoformat()},purchase,1,
h-7,,{(NOW - timedelta(days=3)).isoformat()},purchase,1,
h-8,u-4,{(NOW - timedelta(days=3)).isoformat()},purchase,1,"not json"
h-9,u-4,{(NOW - timedelta(days=90, hours=1)).isoformat()},"signup
form",,
h-10,u-5
"""


def test_import_csv__history_bad_rows_and_duplicates__stored_reported_by_line_exit_1(
    production: Environment, tmp_path: Path,
) -> None:
    path = tmp_path / "history.csv"
    path.write_text(CSV)
    code, out, err = _run(path, environment="production")
    assert code == 1
    assert "11 rows: 3 accepted, 1 duplicate, 7 rejected" in out
    for line, reason in [(4, "timestamp_too_old"), (5, "timestamp_in_future"), (6, "invalid_timestamp"),
                         (7, "invalid_value"), (9, "missing_field"), (10, "invalid_properties"),
                         (13, "invalid_row")]:
        assert f"line {line}: {reason}: " in err, (line, reason, err)
    stored = {e.client_id: e for e in Event.objects.filter(environment=production)}
    assert set(stored) == {"h-1", "h-2", "h-9"}
    assert stored["h-1"].value == 19.5 and stored["h-1"].ts == NOW - timedelta(days=400)
    assert stored["h-2"].value == 1.0 and stored["h-2"].properties == {"sku": "a"}
    assert stored["h-9"].name == "signup\nform"  # a quoted field across two lines: the row starts on line 11

    again, out, _ = _run(path, environment="production")
    assert again == 1 and "11 rows: 0 accepted, 4 duplicate, 7 rejected" in out
    assert Event.objects.filter(environment=production).count() == 3


def test_import_parquet__typed_columns__stored_rejects_by_row_and_rerun_adds_nothing(
    production: Environment, tmp_path: Path,
) -> None:
    table = pa.table({
        "id": ["p-1", "p-2", "p-3", "p-4", "p-2"],
        "unit_id": ["u-1", "u-2", "u-3", "u-4", "u-2"],
        "timestamp": pa.array([NOW - timedelta(days=364), (NOW - timedelta(days=120)).replace(tzinfo=None),
                               NOW - timedelta(days=600), NOW - timedelta(days=1), NOW - timedelta(days=1)],
                              type=pa.timestamp("us", tz="UTC")),
        "name": ["order", "order", "order", "x" * 101, "order"],
        "value": [12.25, None, 4.0, 1.0, 2.0],
    })
    path = tmp_path / "history.parquet"
    pq.write_table(table, path)
    code, out, err = _run(path, "--batch-size", "2", environment="production")
    assert code == 1
    assert "5 rows: 2 accepted, 1 duplicate, 2 rejected" in out
    assert "row 3: timestamp_too_old: `timestamp` is more than 455 days in the past." in err
    assert "row 4: invalid_name: " in err
    stored = {e.client_id: e for e in Event.objects.filter(environment=production)}
    assert set(stored) == {"p-1", "p-2"} and stored["p-1"].value == 12.25 and stored["p-2"].value == 1.0
    assert stored["p-1"].ts == NOW - timedelta(days=364)

    clean = tmp_path / "clean.data"
    pq.write_table(table.slice(0, 2), clean)
    code, out, _ = _run(clean, "--format", "parquet", environment="production")
    assert code == 0 and "2 rows: 0 accepted, 2 duplicate, 0 rejected" in out


def test_import_csv__all_good__exit_0(production: Environment, tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(f"id,unit_id,timestamp,name\nok-1,u-1,{(NOW - timedelta(days=100)).isoformat()},visit\n")
    code, out, err = _run(path, environment="production")
    assert (code, err) == (0, "") and "1 rows: 1 accepted, 0 duplicate, 0 rejected" in out


@pytest.mark.parametrize(
    ("name", "text", "args", "message"),
    [
        ("events.txt", "id\n", (), "give --format csv or parquet"),
        ("events.csv", "id,unit_id,name\n", (), "no column timestamp"),
        ("events.csv", "", (), "empty"),
        ("events.parquet", "not parquet", (), "cannot be read"),
    ],
)
def test_import__unreadable_file__exit_2_nothing_stored(
    production: Environment, tmp_path: Path, name: str, text: str, args: tuple[str, ...], message: str,
) -> None:
    path = tmp_path / name
    path.write_text(text)
    code, _, err = _run(path, *args, environment="production")
    assert code == 2 and message in err, err
    assert not Event.objects.exists()


def test_import__unknown_environment_or_missing_file__exit_2(production: Environment, tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("id,unit_id,timestamp,name\n")
    code, _, err = _run(path, environment="nowhere")
    assert code == 2 and "No environment 'nowhere'" in err
    code, _, err = _run(tmp_path / "missing.csv", environment="production")
    assert code == 2 and "No file at" in err


def test_import_parquet__without_pyarrow__exit_2_naming_the_extra(
    production: Environment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "history.parquet"
    pq.write_table(pa.table({"id": ["a"]}), path)
    # As in an installation without the parquet extra: the import of pyarrow fails.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    code, _, err = _run(path, environment="production")
    assert code == 2 and "pip install 'splitbase[parquet]'" in err
