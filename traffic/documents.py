"""Layers and holdouts as JSON documents (the audit log's before and after)."""

from __future__ import annotations

from typing import Any

from traffic.models import Holdout, Layer


def layer_document(layer: Layer) -> dict[str, Any]:
    return {"key": layer.key, "name": layer.name, "description": layer.description}


def holdout_document(holdout: Holdout) -> dict[str, Any]:
    return {
        "key": holdout.key,
        "name": holdout.name,
        "description": holdout.description,
        "share": holdout.share,
        "hash_attribute": holdout.hash_attribute,
        "seed": holdout.seed,
        "ended_at": holdout.ended_at.isoformat() if holdout.ended_at else None,
    }
