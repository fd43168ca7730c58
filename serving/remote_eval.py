"""``POST /api/eval/{clientKey}``: GrowthBook's remote evaluation, for SDKs started with
``remoteEval`` (JavaScript) or ``remote_eval`` (Python).

The SDK posts its attributes, forced variations, forced feature values and page URL; the answer
is a GrowthBook payload whose features are already evaluated for those attributes, so it holds
no rule, condition or id list: a feature is its value (``defaultValue``), and a value that an
experiment decided is a forced rule carrying the assignment in ``tracks``, which makes the SDK
call its tracking callback as if it had run the experiment itself. Units placed in a running
experiment get their exposure recorded, as ``/api/v1/evaluate`` records it; forced variations
and forced values are served as asked and record nothing. Errors use the API's
``{code, message, details}`` body.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from config.json_values import nested_deeper_than
from flags.engine.evaluation import evaluate_all
from flags.engine.gbformat import payload_date_updated
from flags.engine.types import Evaluation, ExperimentAssignment, Rule
from serving import stream_links
from serving.endpoint import sdk_endpoint
from serving.errors import Rejected
from serving.exposures import track
from serving.metrics import count_evaluations
from serving.request import authenticate, read_json
from serving.responses import json_response
from serving.usage import recorder as usage

__all__ = ["RemoteEvalInput", "remote_eval_view"]

# The page URL GrowthBook SDKs send is only checked for size: no rule of this service targets URLs.
URL_MAX_LENGTH = 2048


class RemoteEvalInput:
    """A checked request: attributes, forced variations (experiment key -> variation index),
    forced values (flag key -> value)."""

    __slots__ = ("attributes", "forced_values", "forced_variations")

    def __init__(self, attributes: dict[str, Any], forced_variations: dict[str, int],
                 forced_values: dict[str, Any]) -> None:
        self.attributes = attributes
        self.forced_variations = forced_variations
        self.forced_values = forced_values


def _invalid(details: dict[str, list[str]]) -> Rejected:
    return Rejected(400, "validation_error", "The request is not valid.", details=details)


def read_input(body: Any) -> RemoteEvalInput:
    """The request's parts, or Rejected(400) naming every wrong field."""
    if not isinstance(body, dict):
        raise _invalid({"non_field_errors": ["The body must be a JSON object."]})
    errors: dict[str, list[str]] = {}
    attributes = body.get("attributes", {})
    max_attributes = int(settings.SDK_MAX_ATTRIBUTES)
    max_depth = int(settings.SDK_MAX_ATTRIBUTE_DEPTH)
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict):
        errors["attributes"] = ["Must be an object of attributes."]
        attributes = {}
    elif len(attributes) > max_attributes:
        errors["attributes"] = [f"Send at most {max_attributes} attributes."]
    elif nested_deeper_than(attributes, max_depth + 1):
        errors["attributes"] = [f"Attribute values may nest at most {max_depth} levels deep."]
    forced_variations = _forced_variations(body.get("forcedVariations"), errors)
    forced_values = _forced_values(body.get("forcedFeatures"), errors)
    url = body.get("url")
    if url is not None and (not isinstance(url, str) or len(url) > URL_MAX_LENGTH):
        errors["url"] = [f"Must be a string of at most {URL_MAX_LENGTH} characters."]
    if errors:
        raise _invalid(errors)
    return RemoteEvalInput(attributes, forced_variations, forced_values)


def _forced_variations(value: Any, errors: dict[str, list[str]]) -> dict[str, int]:
    if value is None:
        return {}
    limit = int(settings.SDK_MAX_FLAGS_PER_REQUEST)
    if not isinstance(value, dict) or not all(
        type(index) is int and index >= 0 for index in value.values()
    ):
        errors["forcedVariations"] = ["Must be an object of experiment keys to variation indexes (0, 1, ...)."]
        return {}
    if len(value) > limit:
        errors["forcedVariations"] = [f"Force at most {limit} experiments."]
        return {}
    return dict(value)


def _forced_values(value: Any, errors: dict[str, list[str]]) -> dict[str, Any]:
    """GrowthBook SDKs send forced features as ``[[key, value], ...]``; an object is taken too."""
    if value is None:
        return {}
    limit = int(settings.SDK_MAX_FLAGS_PER_REQUEST)
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list) and all(
        isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) for pair in value
    ):
        pairs = [(pair[0], pair[1]) for pair in value]
    else:
        errors["forcedFeatures"] = ["Must be a list of [flag key, value] pairs."]
        return {}
    if len(pairs) > limit:
        errors["forcedFeatures"] = [f"Force at most {limit} flags."]
        return {}
    return dict(pairs)


def _experiment(rule: Rule | None, assignment: ExperimentAssignment) -> dict[str, Any]:
    """The experiment as GrowthBook SDKs describe it to a tracking callback."""
    out: dict[str, Any] = {"key": assignment.key, "hashAttribute": assignment.hash_attribute}
    if rule is not None:
        out["variations"] = list(rule.variations or ())
        if rule.meta is not None:
            out["meta"] = [{"key": m.key, **({"name": m.name} if m.name else {})} for m in rule.meta]
        if rule.name:
            out["name"] = rule.name
        if rule.phase:
            out["phase"] = rule.phase
    return out


def _result(assignment: ExperimentAssignment) -> dict[str, Any]:
    """The experiment result as GrowthBook SDKs hand it to a tracking callback."""
    out: dict[str, Any] = {
        "featureId": assignment.feature_id,
        "value": assignment.value,
        "variationId": assignment.variation_id,
        "key": assignment.variation_key,
        "inExperiment": assignment.in_experiment,
        "hashUsed": assignment.hash_used,
        "hashAttribute": assignment.hash_attribute,
        "hashValue": assignment.hash_value,
        "stickyBucketUsed": False,
    }
    if assignment.variation_name:
        out["name"] = assignment.variation_name
    if assignment.bucket is not None:
        out["bucket"] = assignment.bucket
    return out


def evaluated_feature(ev: Evaluation, rule: Rule | None) -> dict[str, Any]:
    """One evaluated feature in GrowthBook's payload shape: the value, and for a value an
    experiment decided by hashing, a forced rule whose ``tracks`` the SDK reports."""
    feature: dict[str, Any] = {"defaultValue": ev.value}
    assignment = ev.experiment
    if assignment is not None and assignment.in_experiment:
        tracked: dict[str, Any] = {"force": ev.value}
        if ev.rule_id:
            tracked["id"] = ev.rule_id
        if assignment.hash_used:
            tracked["tracks"] = [{"experiment": _experiment(rule, assignment), "result": _result(assignment)}]
        feature["rules"] = [tracked]
    return feature


@sdk_endpoint("POST")
def remote_eval_view(request: HttpRequest, client_key: str) -> HttpResponse:
    """Every feature of the client key's environment, evaluated for the posted attributes."""
    info, compiled = authenticate(client_key, allow_server=False)
    wanted = read_input(read_json(request, max_bytes=int(settings.SDK_MAX_BODY_BYTES)))
    snapshot = compiled.snapshot
    attributes = wanted.attributes
    results = evaluate_all(snapshot, attributes, forced_variations=wanted.forced_variations,
                           forced_values=wanted.forced_values)
    count_evaluations("remote_eval", results.values())
    track(info, results.values(), attributes)
    features = {key: evaluated_feature(ev, _rule_of(compiled.snapshot.features.get(key), ev.rule_id))
                for key, ev in results.items()}
    body: dict[str, Any] = {"features": features}
    date_updated = payload_date_updated(snapshot, time.time())
    if date_updated is not None:
        body["dateUpdated"] = date_updated
    headers = {"Cache-Control": "no-store"}
    if compiled.remote_only and stream_links.enabled():
        # The stream of such an environment only tells of changes: the SDK then asks again.
        headers[stream_links.SSE_SUPPORT_HEADER] = "enabled"
    response = json_response(body, headers=headers)
    usage.evaluated(info.environment_id, results)
    return response


def _rule_of(feature: Any, rule_id: str | None) -> Rule | None:
    if feature is None or rule_id is None:
        return None
    for rule in feature.rules:
        if rule.id == rule_id:
            return rule
    return None
