"""Readout documents as snapshots stored them, one of each version (`documents/`): version 1
written by hand in both of its forms, version 2 as the readout wrote it (with and without the
stored version, as rows written before the version was kept hold it), version 3 as the
readout writes it today (the same sums, now with heterogeneity tests and the engine in the
settings)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

DOCUMENTS = Path(__file__).parent / "documents"


def stored(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DOCUMENTS / name).read_text())
    return doc


def unversioned(doc: dict[str, Any]) -> dict[str, Any]:
    """A current document as stored before snapshots kept their version."""
    return {k: v for k, v in doc.items() if k != "schema_version"}


# name -> (the document, the version it was written in)
VERSIONS: dict[str, tuple[Callable[[], dict[str, Any]], int]] = {
    "v1 lists": (lambda: stored("v1_lists.json"), 1),
    "v1 mapping": (lambda: stored("v1_mapping.json"), 1),
    "v2 unversioned": (lambda: unversioned(stored("v2.json")), 2),
    "v2": (lambda: stored("v2.json"), 2),
    "v3": (lambda: stored("v3.json"), 3),
}
