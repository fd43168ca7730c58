"""JSON documents of configuration rows: what the audit log stores as before/after."""

from typing import Any

from base.models import Environment
from flags.models import AttributeDefinition, Flag, FlagState, Rule, Segment


def rule_document(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.uid,
        "position": rule.position,
        "kind": rule.kind,
        "description": rule.description,
        "enabled": rule.enabled,
        "condition": rule.condition,
        "segments": rule.segments,
        "prerequisites": rule.prerequisites,
        "variant": rule.variant,
        "coverage": rule.coverage,
        "hash_attribute": rule.hash_attribute,
        "fallback_attribute": rule.fallback_attribute,
        "seed": rule.seed,
        "variations": rule.variations,
        "weights": rule.weights,
        "experiment_key": rule.experiment_key,
        "namespace": rule.namespace,
        "holdout": rule.holdout or None,
        "passthrough": list(rule.passthrough or []),
        "phase": rule.phase,
        "starts_at": rule.starts_at.isoformat() if rule.starts_at else None,
        "ends_at": rule.ends_at.isoformat() if rule.ends_at else None,
    }


def state_document(state: FlagState) -> dict[str, Any]:
    return {
        "enabled": state.enabled,
        "default_variant": state.default_variant,
        "off_variant": state.off_variant,
        "rules": [rule_document(r) for r in state.rules.all()],
    }


def flag_document(flag: Flag) -> dict[str, Any]:
    return {
        "key": flag.key,
        "name": flag.name,
        "description": flag.description,
        "value_type": flag.value_type,
        "owner": flag.owner,
        "tags": flag.tags,
        "metadata": flag.metadata,
        "lifecycle": flag.lifecycle,
        "prerequisites": flag.prerequisites,
        "archived": flag.archived_at is not None,
        "variants": [{"key": v.key, "name": v.name, "value": v.value} for v in flag.variants.all()],
        "environments": {s.environment.key: state_document(s) for s in flag.states.select_related("environment").all()},
    }


def segment_document(segment: Segment) -> dict[str, Any]:
    return {
        "key": segment.key,
        "name": segment.name,
        "description": segment.description,
        "kind": segment.kind,
        "condition": segment.condition,
        "attribute": segment.attribute,
        "ids": segment.ids,
        "private": segment.private,
    }


def environment_document(env: Environment) -> dict[str, Any]:
    # Keys are secrets: the audit log records that they changed, not their values.
    return {"key": env.key, "name": env.name, "client_key_prefix": env.client_key[:8],
            "client_payload": env.client_payload}


def attribute_document(attribute: AttributeDefinition) -> dict[str, Any]:
    return {
        "name": attribute.name,
        "type": attribute.type,
        "allowed_values": attribute.allowed_values,
        "description": attribute.description,
    }
