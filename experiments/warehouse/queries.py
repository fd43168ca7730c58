"""The checks a data source's queries pass before they are stored: parsed in the engine's
dialect (never matched as text), one SELECT without any statement that writes or changes
anything, and the columns the readout reads named in its result."""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

__all__ = ["EVENT_COLUMNS", "EXPOSURE_COLUMNS", "MAX_QUERY_LENGTH", "QueryCheck", "query_check", "sample_statement"]

MAX_QUERY_LENGTH = 20_000
EXPOSURE_COLUMNS = ("unit_id", "timestamp", "experiment", "variation")
EVENT_COLUMNS = ("unit_id", "timestamp", "name", "value")

# Nodes of statements that write, change the schema or the session: refused anywhere in the tree.
_REFUSED: tuple[type[exp.Expr], ...] = tuple(
    getattr(exp, name) for name in (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "TruncateTable", "Copy", "LoadData",
        "Into", "Command", "Set", "Use", "Pragma", "Grant", "Revoke", "Transaction", "Commit", "Rollback",
        "Cache", "Uncache", "Refresh", "Analyze", "Kill", "Describe",
    ) if hasattr(exp, name)
)


@dataclass(frozen=True, slots=True)
class QueryCheck:
    """A checked query: its columns in order, or what is wrong with it."""

    errors: tuple[str, ...]
    columns: tuple[str, ...] = ()
    expression: exp.Query | None = None


def query_check(text: object, dialect: str, required: tuple[str, ...]) -> QueryCheck:
    """Check a query written in `dialect` that must return the `required` columns (and may add more)."""
    if not isinstance(text, str) or not text.strip():
        return QueryCheck(("Give the query: one SELECT.",))
    if len(text) > MAX_QUERY_LENGTH:
        return QueryCheck((f"The query is longer than {MAX_QUERY_LENGTH} characters.",))
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except (ParseError, TokenError) as exc:
        return QueryCheck((f"The query does not parse as {dialect} SQL: {str(exc).splitlines()[0][:300]}",))
    if len(statements) != 1:
        return QueryCheck((f"Give exactly one statement (found {len(statements)}).",))
    statement = statements[0]
    refused = sorted({type(node).__name__.upper() for node in statement.walk() if isinstance(node, _REFUSED)})
    if refused:
        return QueryCheck((f"Only a SELECT is allowed; the query holds {', '.join(refused)}.",))
    if not isinstance(statement, exp.Query):
        return QueryCheck(("The query must be a SELECT.",))
    if statement.is_star or any(isinstance(s, exp.Star) or (isinstance(s, exp.Column) and s.is_star)
                                for s in statement.selects):
        return QueryCheck(("Name the columns the query returns (no *), so that they can be checked.",))
    columns = tuple(statement.named_selects)
    lowered = [c.lower() for c in columns]
    errors = []
    unnamed = [i for i, c in enumerate(columns) if not c]
    if unnamed:
        errors.append("Give every column a name (… AS name).")
    missing = [c for c in required if c not in lowered]
    if missing:
        errors.append(f"The query must return the columns {', '.join(required)}; missing: {', '.join(missing)}.")
    duplicated = sorted({c for c in lowered if c and lowered.count(c) > 1})
    if duplicated:
        errors.append(f"Each column appears once; repeated: {', '.join(duplicated)}.")
    return QueryCheck(tuple(errors), columns=tuple(lowered), expression=statement if not errors else None)


def sample_statement(text: str, dialect: str, limit: int) -> str:
    """The query's first `limit` rows (a test of a data source reads no more)."""
    check = query_check(text, dialect, ())
    if check.expression is None:
        raise ValueError("; ".join(check.errors))
    return exp.select("*").from_(check.expression.subquery("q")).limit(int(limit)).sql(dialect=dialect)
