"""Readout documents stored before the current shape, told apart by their shape.

- Version 1 kept one difference type per analysis (the experiment's own) and no
  `sequential_unadjusted`; an analysis is a list of comparisons, or a mapping
  {"relative": [...], "absolute": [...]} by difference type. No version is stored.
  The mapping form is version 1 whatever it holds: no later writer used it.
- Version 2 keeps both difference types in every overall analysis, the experiment's own
  first, and `sequential_unadjusted` when CUPED is on. Documents written before snapshots
  stored their version have no `schema_version`.
- Version 3 adds the Bayesian engine (`engine`, `prior_mean` and `prior_stddev` in the
  settings, the `bayesian` and `bayesian_unadjusted` analyses, `risk` in their comparisons)
  and a metric's `heterogeneity` tests over its slices. A version 2 document has none of
  them: it reads as a frequentist readout without heterogeneity tests. Every version 3
  document stores its version.
Reading is the same for all, apart from the mapping form of an analysis, which `mode_items`
flattens; a version 1 document read and written again is a version 2 document holding fewer
views, which the readers already allow for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from experiments.readout.settings import MODES


def mode_items(raw: Any, first: str) -> list[tuple[str | None, Mapping[str, Any]]] | None:
    """The comparisons of one stored analysis, each with the difference type its mapping key
    names (None in the list form); None when the analysis is not stored. The mapping form
    gives the `first` difference type first, as the list form does (the database does not
    keep the order of a mapping's keys)."""
    if isinstance(raw, Mapping):
        types = sorted(raw, key=lambda dtype: dtype != first)
        return [(str(dtype), item) for dtype in types if isinstance(raw[dtype], (list, tuple))
                for item in raw[dtype] if isinstance(item, Mapping)]
    if isinstance(raw, (list, tuple)):
        return [(None, item) for item in raw if isinstance(item, Mapping)]
    return None


def document_version(doc: Mapping[str, Any]) -> int:
    """The version a stored document was written in: its own when stored, else by its shape."""
    stored = doc.get("schema_version")
    if isinstance(stored, int) and not isinstance(stored, bool):
        return stored
    metrics = [m for m in doc.get("metrics") or () if isinstance(m, Mapping)]
    if any(isinstance(m.get(mode), Mapping) for m in metrics for mode in MODES):
        return 1
    for metric in metrics:
        if metric.get("sequential_unadjusted") is not None:
            return 2
        for mode in MODES:
            items = mode_items(metric.get(mode), "")
            if items is not None and len({c.get("difference_type") for _, c in items}) > 1:
                return 2
    return 1
