"""``POST /api/v1/evaluate``: all or some flags for one unit, with the unit's exposures recorded.
Errors use the API's ``{code, message, details}`` body.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from flags.engine.evaluation import evaluate_all
from flags.engine.types import Evaluation
from serving.endpoint import sdk_endpoint
from serving.errors import Rejected
from serving.exposures import track
from serving.metrics import count_evaluations
from serving.request import attributes_of, authenticate, raw_key, read_json
from serving.responses import json_response
from serving.usage import recorder as usage

__all__ = ["evaluate_view"]


def _invalid(details: dict[str, list[str]]) -> Rejected:
    return Rejected(400, "validation_error", "The request is not valid.", details=details)


def _input(body: Any) -> tuple[dict[str, Any], list[str] | None, bool]:
    """(context, flag keys or None for all, track) or Rejected(400) listing every problem."""
    if not isinstance(body, dict):
        raise _invalid({"non_field_errors": ["The body must be a JSON object."]})
    errors: dict[str, list[str]] = {}
    context = body.get("context", {})
    if not isinstance(context, dict):
        errors["context"] = ["Must be an object of attributes."]
        context = {}
    else:
        targeting_key = context.get("targetingKey")
        if targeting_key is not None and not isinstance(targeting_key, str):
            errors["context.targetingKey"] = ["Must be a string (the unit id)."]
    keys = body.get("flags")
    if keys is not None:
        limit = int(settings.SDK_MAX_FLAGS_PER_REQUEST)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            errors["flags"] = ["Must be a list of flag keys."]
            keys = None
        elif len(keys) > limit:
            errors["flags"] = [f"Ask for at most {limit} flags; leave 'flags' out to get all of them."]
            keys = None
        else:
            keys = list(dict.fromkeys(keys))
    tracking = body.get("track", True)
    if not isinstance(tracking, bool):
        errors["track"] = ["Must be true or false."]
    if errors:
        raise _invalid(errors)
    return context, keys, tracking


def _flag(ev: Evaluation) -> dict[str, Any]:
    assignment = ev.experiment
    experiment = None
    if assignment is not None:
        experiment = {
            "key": assignment.key,
            "variation": assignment.variation_key,
            "inExperiment": assignment.in_experiment,
            "hashAttribute": assignment.hash_attribute,
            "hashValue": assignment.hash_value,
        }
    return {
        "value": ev.value,
        "variant": ev.variant,
        "reason": ev.reason.value,
        "ruleId": ev.rule_id,
        "experiment": experiment,
    }


@sdk_endpoint("POST")
def evaluate_view(request: HttpRequest) -> HttpResponse:
    """Evaluate every flag (or ``flags``) for the unit in ``context``; units placed in a
    running experiment get an exposure recorded unless ``"track": false``."""
    info, compiled = authenticate(raw_key(request))
    context, keys, tracking = _input(read_json(request, max_bytes=int(settings.SDK_MAX_BODY_BYTES)))
    snapshot = compiled.snapshot
    if keys is not None:
        unknown = [k for k in keys if k not in snapshot.features]
        if unknown:
            raise Rejected(404, "flag_not_found", "Some flags do not exist in this environment.",
                           details={"flags": unknown})
    attributes = attributes_of(context)
    results = evaluate_all(snapshot, attributes, keys)
    count_evaluations("evaluate", results.values())
    if tracking:
        track(info, results.values(), attributes)
    response = json_response(
        {"flags": {key: _flag(ev) for key, ev in results.items()}, "configVersion": snapshot.version}
    )
    # A subset of the flags also evaluates their prerequisites: those are in use too.
    usage.evaluated(info.environment_id, results if keys is None else compiled.used_by(results))
    return response
