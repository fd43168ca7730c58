"""Value types of the traffic core: hash ranges, namespaces and range filters."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BucketRange", "Filter", "Namespace"]

# A half-open interval [start, end) of the unit hash space [0, 1).
BucketRange = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Namespace:
    """A named hash space (a layer); a unit is in it when the version-1 hash of
    ``"__" + id`` falls in [start, end)."""

    id: str
    start: float
    end: float

    def as_list(self) -> list[object]:
        """GrowthBook's ``[id, start, end]`` form."""
        return [self.id, self.start, self.end]


@dataclass(frozen=True, slots=True)
class Filter:
    """Keep only units whose hash of ``attribute`` with ``seed`` falls in one of ``ranges``."""

    seed: str
    ranges: tuple[BucketRange, ...]
    attribute: str | None = None
    hash_version: int = 2
