"""Table rows of the long list pages, built as strings.

The experiment and flag lists show hundreds of rows; Django's template engine spends most of
a request resolving variables row by row, so these rows are formatted here instead (every
value escaped) and the templates insert the finished table body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from pages.presentation.badges import Badge

KEY_PLACEHOLDER = "__key__"
DASH = '<span class="muted">—</span>'
OK = '<span class="badge good">ok</span>'


def _badges(badges: Sequence[Badge], fallback: str) -> str:
    if not badges:
        return fallback
    return "".join(
        f'<span class="badge {escape(b.tone)} badge-{escape(b.code)}" title="{escape(b.explanation)}">'
        f"{escape(b.label)}</span>"
        for b in badges
    )


def experiment_rows(rows: Iterable[Mapping[str, Any]], *, detail_url: str) -> SafeString:
    """`detail_url` contains KEY_PLACEHOLDER where the experiment's key goes."""
    out: list[str] = []
    for row in rows:
        e = row["experiment"]
        key = escape(e.key)
        sub = [f"{escape(e.flag.key)} · {escape(e.environment.key)}"]
        if e.owner:
            sub.append(escape(e.owner))
        tags = "".join(f'<span class="tag">{escape(t)}</span>' for t in e.tags or [])
        decision = f'<div class="small muted">Decided: {escape(row["decision"])}</div>' if row.get("decision") else ""
        arms = "".join(f"<div>{escape(name)}: {escape(units)}</div>" for name, units in row["arms"])
        tone = {"good": " sig-good", "bad": " sig-bad"}.get(row["primary_tone"], "")
        primary = (
            f'<div class="muted">{escape(row["primary_name"])}</div>{escape(row["primary"])}'
            if row["primary"]
            else DASH
        )
        days = row["days"]
        out.append(
            f'<tr data-experiment="{key}">'
            f'<td><a href="{escape(detail_url.replace(KEY_PLACEHOLDER, e.key))}"><strong>{key}</strong></a>'
            + (f'<div class="small muted">{escape(e.name)}</div>' if e.name else "")
            + f'<div class="small muted">{" · ".join(sub)}</div>'
            + (f'<div class="small tags">{tags}</div>' if tags else "")
            + "</td>"
            f'<td><span class="badge{" info" if e.status == "running" else ""}">{escape(e.get_status_display())}'
            f"</span>{decision}</td>"
            f'<td class="num">{escape(row["phase"] or "—")}</td>'
            f'<td class="num">{"—" if days is None else f"{days:.0f}"}</td>'
            f'<td class="small">{arms or DASH}</td>'
            f'<td class="small{tone}">{primary}</td>'
            f'<td>{_badges(row["badges"], OK if row["updated"] else "")}</td>'
            "</tr>"
        )
    if not out:
        out.append('<tr><td colspan="7" class="muted">No experiments match.</td></tr>')
    return mark_safe("".join(out))  # noqa: S308 - every value above is escaped


def flag_rows(rows: Iterable[Mapping[str, Any]], *, detail_url: str, only_stale: bool) -> SafeString:
    out: list[str] = []
    for row in rows:
        item = row["lifecycle"]
        cells = []
        for _, state in row["environments"]:
            if state is None:
                cells.append("<td>—</td>")
            elif state.enabled:
                cells.append(f'<td><span class="badge good">on</span> <span class="small muted">default '
                             f"{escape(state.default_variant)}</span></td>")
            else:
                cells.append(f'<td><span class="badge">off</span> <span class="small muted">serves '
                             f"{escape(state.off_variant)}</span></td>")
        if item.stale:
            reasons = escape("; ".join(item.reasons))
            status = (f'<span class="badge warn stale-badge" title="{reasons}">stale</span> '
                      f'<span class="small muted">{reasons}</span>')
        elif item.rolled_out_variant:
            since = item.rolled_out_since.strftime("%Y-%m-%d") if item.rolled_out_since else ""
            status = (f'<span class="badge info" title="Serves \'{escape(item.rolled_out_variant)}\' to everyone '
                      f'since {since}">fully rolled out</span>')
        else:
            status = '<span class="badge">in use</span>'
        changed = item.last_changed.strftime("%Y-%m-%d") if item.last_changed else ""
        evaluated = item.last_evaluated.strftime("%Y-%m-%d %H:%M") if item.last_evaluated else "never"
        out.append(
            f'<tr data-flag="{escape(item.key)}"><td><a href="{escape(detail_url.replace(KEY_PLACEHOLDER, item.key))}">'
            f"<strong>{escape(item.key)}</strong></a></td><td>{escape(item.lifecycle)}</td>{''.join(cells)}"
            f'<td class="num">{row["experiments"]}</td><td class="small">{evaluated}</td>'
            f'<td class="small">{changed}</td><td>{status}</td></tr>'
        )
    if not out:
        text = "No stale flags. Nothing to clean up." if only_stale else "No flags."
        out.append(f'<tr><td colspan="9" class="muted">{text}</td></tr>')
    return mark_safe("".join(out))  # noqa: S308 - every value above is escaped
