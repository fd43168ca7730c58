"""What a webhook is told: the events, how an audit entry becomes one, the JSON and Slack bodies,
and the signature. Pure (no Django)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

__all__ = ["EVENTS", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "event_of", "sign", "slack_body"]

SIGNATURE_HEADER = "X-Splitbase-Signature"
TIMESTAMP_HEADER = "X-Splitbase-Timestamp"

EVENTS: dict[str, str] = {
    "flag.changed": "a flag, its state, rules or ramps changed (kill switch included)",
    "segment.changed": "a segment changed",
    "change_request.opened": "a change to a reviewed environment awaits approval",
    "change_request.approved": "a change request was approved and applied",
    "experiment.started": "an experiment started",
    "experiment.stopped": "an experiment stopped (with its decision)",
    "experiment.srm_detected": "a readout found a sample-ratio mismatch",
    "readout.failed": "a readout failed",
    "rollout.guardrail_harmed": "a guarded rollout found a guardrail harmed",
    "rollout.rolled_back": "a guarded rollout rolled itself back or paused",
}

# Audit actions (or their prefixes) and the event each is.
_BY_ACTION = {
    "experiment.start": "experiment.started",
    "experiment.stop": "experiment.stopped",
    "experiment.srm_detected": "experiment.srm_detected",
    "experiment.readout_failed": "readout.failed",
    "change_request.open": "change_request.opened",
    "change_request.approve": "change_request.approved",
    "rollout.guardrail_harmed": "rollout.guardrail_harmed",
    "rollout.rollback": "rollout.rolled_back",
    "rollout.pause": "rollout.rolled_back",
}
_BY_OBJECT = {"flag": "flag.changed", "segment": "segment.changed"}


def event_of(action: str, object_type: str) -> str | None:
    """The event an audit entry is, or None when no webhook hears of it."""
    if action in _BY_ACTION:
        return _BY_ACTION[action]
    return _BY_OBJECT.get(object_type)


def sign(secret: str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of the body with the webhook's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def slack_body(event: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The same delivery as a Slack incoming-webhook message."""
    where = f" in {payload['environment']}" if payload.get("environment") else ""
    what = f"{payload['object']['type']} `{payload['object']['key']}`"
    text = f"*{event}*: {what}{where} ({payload['action']} by {payload['actor']})"
    return {"text": text}
