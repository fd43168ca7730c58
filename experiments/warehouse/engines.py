"""The engines a data source can name: their SQL dialect, their connection fields, and where
the dialect library's translation needs an override.

Secrets are never part of a connection: a field whose name ends in `_env` names an environment
variable the worker reads when it connects (`{"password_env": "WAREHOUSE_PASSWORD"}`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ENGINES", "ENV_NAME", "SECRET_WORDS", "Engine", "FieldSpec", "connection_errors"]

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
MEMORY = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,3})?\s?(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
# A field whose name holds one of these is a secret: only its `_env` form is accepted.
SECRET_WORDS = ("password", "secret", "token", "private_key", "passphrase", "credential", "dsn")
MAX_TEXT = 1000


@dataclass(frozen=True, slots=True)
class FieldSpec:
    # "text", "int", "bool", "env" (the name of an environment variable), "map" (text to text),
    # "memory" (a size such as 512MB or 1.5GB), "threads" (1 to 256)
    kind: str
    required: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()  # the values a text field may take (any when empty)


@dataclass(frozen=True, slots=True)
class Engine:
    key: str
    label: str
    dialect: str  # the SQL dialect's name in sqlglot
    extra: str  # the optional dependency group that installs its driver
    fields: Mapping[str, FieldSpec] = field(default_factory=dict)
    # Percentile caps: whether the engine computes them exactly (linear interpolation).
    exact_percentiles: bool = True


ENGINES: dict[str, Engine] = {
    engine.key: engine
    for engine in (
        Engine("duckdb", "DuckDB (embedded, a database file)", "duckdb", "duckdb", {
            "path": FieldSpec("text", required=True, help="The database file, opened read-only."),
            "memory_limit": FieldSpec("memory", help="DuckDB's memory_limit, e.g. 1.5GB (beyond it, it spills "
                                                     "to a temporary directory next to the file)."),
            "threads": FieldSpec("threads", help="DuckDB's threads: how many cores a readout uses (1 to 256)."),
        }),
        Engine("postgres", "PostgreSQL", "postgres", "postgres", {
            "host": FieldSpec("text", required=True),
            "port": FieldSpec("int"),
            "dbname": FieldSpec("text", required=True),
            "user": FieldSpec("text"),
            "password_env": FieldSpec("env"),
            "sslmode": FieldSpec("text"),
        }),
        Engine("clickhouse", "ClickHouse (chDB, the embedded engine, on a data directory)", "clickhouse",
               "clickhouse", {
                   "path": FieldSpec("text", required=True, help="The chDB data directory."),
               }),
        Engine("spark", "Spark SQL / Databricks (a Spark session)", "spark", "spark", {
            "master": FieldSpec("text", help="For example local[2] (the default)."),
            "warehouse_dir": FieldSpec("text", help="spark.sql.warehouse.dir: where its tables live."),
            "conf": FieldSpec("map", help="Further Spark settings, text to text."),
        }),
        Engine("snowflake", "Snowflake", "snowflake", "snowflake", {
            "account": FieldSpec("text", required=True, help="The account identifier, e.g. myorg-myaccount."),
            "user": FieldSpec("text", required=True),
            "password_env": FieldSpec("env"),
            "private_key_env": FieldSpec("env", help="Key-pair login: the PEM text of the user's private key."),
            "private_key_passphrase_env": FieldSpec("env", help="The passphrase of an encrypted private key."),
            "database": FieldSpec("text"),
            "schema": FieldSpec("text"),
            "warehouse": FieldSpec("text", help="The virtual warehouse the readouts run (and bill) on."),
            "role": FieldSpec("text"),
            "host": FieldSpec("text", help="Another endpoint than the account's own (a proxy, a private link)."),
            "port": FieldSpec("int"),
            "protocol": FieldSpec("text", choices=("https", "http")),
        }),
    )
}


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def connection_errors(engine: Engine, connection: Any) -> list[str]:
    """What is wrong with a connection object for `engine` (empty when it is usable)."""
    if not isinstance(connection, Mapping):
        return ["Give the connection as a JSON object."]
    errors: list[str] = []
    for name, value in connection.items():
        if not isinstance(name, str):
            errors.append("Connection field names are text.")
            continue
        spec = engine.fields.get(name)
        if spec is None:
            if _is_secret(name) and not name.endswith("_env"):
                errors.append(f"'{name}' looks like a secret: secrets are never stored. Put it in an environment "
                              f"variable of the workers and give its name, e.g. \"{name}_env\": \"WAREHOUSE_"
                              f"{name.upper()}\".")
            else:
                errors.append(f"Unknown field '{name}' for {engine.key}; use {', '.join(engine.fields) or 'none'}.")
            continue
        if spec.kind == "text" and not (isinstance(value, str) and 0 < len(value) <= MAX_TEXT):
            errors.append(f"'{name}' is text of 1 to {MAX_TEXT} characters.")
        elif spec.kind == "text" and spec.choices and value not in spec.choices:
            errors.append(f"'{name}' is one of {', '.join(spec.choices)}.")
        elif spec.kind == "int" and (not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536):
            errors.append(f"'{name}' is a whole number from 1 to 65535.")
        elif spec.kind == "memory" and not (isinstance(value, str) and MEMORY.match(value)):
            errors.append(f"'{name}' is a size such as 512MB or 1.5GB (KB, MB, GB, TB, KiB, MiB, GiB, TiB).")
        elif spec.kind == "threads" and (not isinstance(value, int) or isinstance(value, bool)
                                         or not 1 <= value <= 256):
            errors.append(f"'{name}' is a whole number from 1 to 256.")
        elif spec.kind == "bool" and not isinstance(value, bool):
            errors.append(f"'{name}' is true or false.")
        elif spec.kind == "env" and not (isinstance(value, str) and ENV_NAME.match(value)):
            errors.append(f"'{name}' names an environment variable (capitals, digits and _), not a value.")
        elif spec.kind == "map":
            if not isinstance(value, Mapping) or len(value) > 50 or not all(
                    isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 200 and len(v) <= MAX_TEXT
                    for k, v in value.items()):
                errors.append(f"'{name}' is an object of up to 50 text settings.")
            elif any(_is_secret(k) for k in value):
                errors.append(f"'{name}' may not hold secrets; workers read them from environment variables.")
    for name, spec in engine.fields.items():
        if spec.required and name not in connection:
            errors.append(f"'{name}' is required for {engine.key}.")
    return errors
