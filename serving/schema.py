"""OpenAPI description of the SDK endpoints, added to the drf-spectacular schema by a
post-processing hook (the endpoints are plain Django views, which drf-spectacular does not see).

It describes what the service answers, including the errors that the protocols leave open
(413 for large bodies, 429 with an integer ``Retry-After``, 503 before any snapshot exists).
The events API is described as the management API's operations are (tag ``v1``, components
named as drf-spectacular names request and response bodies), in its place among them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from experiments.ingestion import MAX_BATCH_ITEMS

__all__ = ["add_sdk_endpoints", "events_components", "events_paths", "sdk_components", "sdk_paths"]

_JSON = "application/json"
_ANY: dict[str, Any] = {}
_OFREP_REASONS = ["STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "UNKNOWN"]
_OFREP_ERRORS = ["PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL"]
_REASONS = ["STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "DEFAULT", "ERROR", "UNKNOWN"]
_SECURITY: list[dict[str, list[str]]] = [{"SdkKeyHeader": []}, {"SdkKeyBearer": []}]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": _ref(schema)}}}


def _retry_after(description: str) -> dict[str, Any]:
    return {"Retry-After": {"description": description, "schema": {"type": "integer", "minimum": 1}}}


def _limited(schema: str) -> dict[str, Any]:
    return {**_body(schema, "Too many requests for this key."), "headers": _retry_after("Seconds to wait.")}


def _unavailable(schema: str) -> dict[str, Any]:
    return {
        **_body(schema, "No snapshot yet and the database is unreachable."),
        "headers": _retry_after("Seconds to wait."),
    }


def _if_none_match() -> dict[str, Any]:
    return {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "The ETag of an earlier answer: 304 when nothing changed.",
        "schema": {"type": "string"},
    }


def sdk_components() -> dict[str, Any]:
    context = {
        "type": "object",
        "description": "Attributes of the unit; targetingKey is its id (attribute `id` for rules and hashing).",
        "properties": {"targetingKey": {"type": "string"}},
        "additionalProperties": True,
    }
    ofrep_context = {**context, "required": ["targetingKey"]}
    experiment = {
        "type": "object",
        "nullable": True,
        "properties": {
            "key": {"type": "string"},
            "variation": {"type": "string"},
            "inExperiment": {"type": "boolean"},
            "hashAttribute": {"type": "string"},
            "hashValue": _ANY,
        },
        "required": ["key", "variation", "inExperiment", "hashAttribute", "hashValue"],
    }
    return {
        "OfrepEvaluationRequest": {
            "type": "object", "required": ["context"], "properties": {"context": ofrep_context},
        },
        "OfrepEvaluationSuccess": {
            "type": "object",
            "required": ["key", "reason", "variant"],
            "properties": {
                "key": {"type": "string"},
                "reason": {"type": "string", "enum": _OFREP_REASONS},
                "variant": {"type": "string"},
                "value": {"description": "Absent when the code default applies (a prerequisite does not hold)."},
                "metadata": {"type": "object"},
            },
        },
        "OfrepEvaluationFailure": {
            "type": "object",
            "required": ["key", "errorCode"],
            "properties": {
                "key": {"type": "string"},
                "errorCode": {"type": "string", "enum": _OFREP_ERRORS},
                "errorDetails": {"type": "string"},
            },
        },
        "OfrepFlagNotFound": {
            "type": "object",
            "required": ["key", "errorCode"],
            "properties": {
                "key": {"type": "string"},
                "errorCode": {"type": "string", "enum": ["FLAG_NOT_FOUND"]},
                "errorDetails": {"type": "string"},
            },
        },
        "OfrepBulkEvaluationSuccess": {
            "type": "object",
            "required": ["flags"],
            "properties": {
                "flags": {
                    "type": "array",
                    "items": {"anyOf": [_ref("OfrepEvaluationSuccess"), _ref("OfrepEvaluationFailure")]},
                },
                "metadata": {"type": "object", "properties": {"configVersion": {"type": "integer"}}},
                "eventStreams": {
                    "type": "array",
                    "description": "With streaming on: the SSE stream of change notifications (docs/sdk.md).",
                    "items": {
                        "type": "object",
                        "required": ["type", "url"],
                        "properties": {
                            "type": {"type": "string", "enum": ["sse"]},
                            "url": {"type": "string", "format": "uri"},
                            "inactivityDelaySec": {"type": "integer", "minimum": 1},
                        },
                    },
                },
            },
        },
        "OfrepBulkEvaluationFailure": {
            "type": "object",
            "required": ["errorCode"],
            "properties": {
                "errorCode": {"type": "string", "enum": _OFREP_ERRORS},
                "errorDetails": {"type": "string"},
            },
        },
        "OfrepError": {
            "type": "object",
            "required": ["errorCode", "errorDetails"],
            "properties": {"errorCode": {"type": "string"}, "errorDetails": {"type": "string"}},
        },
        "EvaluateRequest": {
            "type": "object",
            "properties": {
                "context": context,
                "flags": {"type": "array", "items": {"type": "string"}, "description": "Only these flags."},
                "track": {"type": "boolean", "default": True, "description": "Record exposures (default)."},
            },
        },
        "EvaluatedFlag": {
            "type": "object",
            "required": ["value", "variant", "reason", "ruleId", "experiment"],
            "properties": {
                "value": _ANY,
                "variant": {"type": "string", "nullable": True},
                "reason": {"type": "string", "enum": _REASONS},
                "ruleId": {"type": "string", "nullable": True},
                "experiment": experiment,
            },
        },
        "EvaluateResponse": {
            "type": "object",
            "required": ["flags", "configVersion"],
            "properties": {
                "flags": {"type": "object", "additionalProperties": _ref("EvaluatedFlag")},
                "configVersion": {"type": "integer"},
            },
        },
        "SdkPayload": {
            "type": "object",
            "description": "GrowthBook SDK payload: features, saved groups and when they last changed.",
            "required": ["features"],
            "properties": {
                "features": {"type": "object", "additionalProperties": {"type": "object"}},
                "savedGroups": {"type": "object", "additionalProperties": {"type": "array"}},
                "dateUpdated": {"type": "string"},
            },
        },
        "RemoteEvalRequest": {
            "type": "object",
            "description": "What GrowthBook SDKs post in remote-evaluation mode.",
            "properties": {
                "attributes": {"type": "object", "description": "At most SDK_MAX_ATTRIBUTES attributes, values "
                               "nested at most SDK_MAX_ATTRIBUTE_DEPTH levels."},
                "forcedVariations": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
                                     "description": "Experiment key to the variation index to serve."},
                "forcedFeatures": {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2},
                                   "description": "[flag key, value] pairs served as given."},
                "url": {"type": "string", "maxLength": 2048, "description": "The page's URL (not used)."},
            },
        },
        "SdkError": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": _ANY},
        },
    }


def _ofrep_errors(bad_request: str) -> dict[str, Any]:
    return {
        "400": _body(bad_request, "The body is not JSON, or the context is missing or wrong."),
        "401": _body("OfrepError", "No SDK key, or an unknown or revoked one."),
        "403": _body("OfrepError", "A management token instead of an SDK key."),
        "413": _body("OfrepError", "The body is larger than SDK_MAX_BODY_BYTES."),
        "429": _limited("OfrepError"),
        "503": _unavailable("OfrepError"),
    }


def sdk_paths() -> dict[str, Any]:
    ofrep_request = {"required": True, "content": {_JSON: {"schema": _ref("OfrepEvaluationRequest")}}}
    return {
        "/ofrep/v1/evaluate/flags/{key}": {
            "post": {
                "operationId": "ofrep_evaluate_flag",
                "summary": "OFREP: evaluate one flag",
                "tags": ["sdk"],
                "security": _SECURITY,
                "parameters": [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": ofrep_request,
                "responses": {
                    "200": _body("OfrepEvaluationSuccess", "The flag's value, variant and reason."),
                    **_ofrep_errors("OfrepEvaluationFailure"),
                    "404": _body("OfrepFlagNotFound", "No such flag in the key's environment."),
                },
            }
        },
        "/ofrep/v1/evaluate/flags": {
            "post": {
                "operationId": "ofrep_evaluate_flags",
                "summary": "OFREP: evaluate every flag",
                "tags": ["sdk"],
                "security": _SECURITY,
                "parameters": [
                    _if_none_match(),
                    {"name": "flagConfigEtag", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": "The etag of the stream notification that triggered this request: a server "
                                    "process that does not serve that version yet reads it first."},
                    {"name": "flagConfigLastModified", "in": "query", "required": False,
                     "schema": {"type": "string"}, "description": "The notification's lastModified (not used)."},
                ],
                "requestBody": ofrep_request,
                "responses": {
                    "200": {
                        **_body("OfrepBulkEvaluationSuccess", "Every flag of the environment."),
                        "headers": {"ETag": {"schema": {"type": "string"}}},
                    },
                    "304": {"description": "Same answer as the ETag in If-None-Match."},
                    **_ofrep_errors("OfrepBulkEvaluationFailure"),
                },
            }
        },
        "/api/v1/evaluate": {
            "post": {
                "operationId": "sdk_evaluate",
                "summary": "Evaluate all (or some) flags for one unit and record its exposures",
                "tags": ["sdk"],
                "security": _SECURITY,
                "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("EvaluateRequest")}}},
                "responses": {
                    "200": _body("EvaluateResponse", "Every requested flag."),
                    "400": _body("SdkError", "parse_error or validation_error."),
                    "401": _body("SdkError", "No SDK key, or an unknown or revoked one."),
                    "403": _body("SdkError", "A management token instead of an SDK key."),
                    "404": _body("SdkError", "flag_not_found: details.flags lists the unknown keys."),
                    "413": _body("SdkError", "The body is larger than SDK_MAX_BODY_BYTES."),
                    "429": _limited("SdkError"),
                    "503": _unavailable("SdkError"),
                },
            }
        },
        "/api/features/{clientKey}": {
            "get": {
                "operationId": "sdk_payload",
                "summary": "GrowthBook SDK payload of the client key's environment",
                "tags": ["sdk"],
                "security": [],
                "parameters": [
                    {"name": "clientKey", "in": "path", "required": True, "schema": {"type": "string"}},
                    _if_none_match(),
                ],
                "responses": {
                    "200": {
                        **_body("SdkPayload", "The payload."),
                        "headers": {
                            "ETag": {"schema": {"type": "string"}},
                            "Cache-Control": {"schema": {"type": "string"}},
                            "x-sse-support": {"schema": {"type": "string", "enum": ["enabled"]},
                                              "description": "With streaming on: the SDK may open /sub/{clientKey}."},
                        },
                    },
                    "304": {"description": "Unchanged since the ETag in If-None-Match."},
                    "401": _body("SdkError", "Unknown or revoked client key."),
                    "403": _body("SdkError", "A server key or a management token (use the client key)."),
                    "429": _limited("SdkError"),
                    "503": _unavailable("SdkError"),
                },
            }
        },
        "/api/eval/{clientKey}": {
            "post": {
                "operationId": "sdk_remote_eval",
                "summary": "GrowthBook remote evaluation: every feature evaluated for the posted attributes",
                "tags": ["sdk"],
                "security": [],
                "parameters": [{"name": "clientKey", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("RemoteEvalRequest")}}},
                "responses": {
                    "200": _body("SdkPayload", "Features as values; an experiment's value as a forced rule with "
                                               "the assignment in `tracks`."),
                    "400": _body("SdkError", "parse_error, invalid_characters or validation_error (details name "
                                             "the fields)."),
                    "401": _body("SdkError", "Unknown or revoked client key."),
                    "403": _body("SdkError", "A server key or a management token (use the client key)."),
                    "413": _body("SdkError", "The body is larger than SDK_MAX_BODY_BYTES."),
                    "429": _limited("SdkError"),
                    "503": _unavailable("SdkError"),
                },
            }
        },
        "/sub/{clientKey}": {
            "get": {
                "operationId": "sdk_stream",
                "summary": "GrowthBook SDK change stream: a redirect to the streaming process",
                "tags": ["sdk"],
                "security": [],
                "parameters": [{"name": "clientKey", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "307": {"description": "On to STREAMING_URL/sub/{clientKey}, where the server-sent events are.",
                            "headers": {"Location": {"schema": {"type": "string"}}}},
                    "401": _body("SdkError", "Unknown or revoked client key."),
                    "403": _body("SdkError", "A server key or a management token (use the client key)."),
                    "404": _body("SdkError", "streaming_disabled: STREAMING_URL is not set."),
                    "429": _limited("SdkError"),
                    "503": _unavailable("SdkError"),
                },
            }
        },
    }


def _string(description: str, *, max_length: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "minLength": 1, "description": description}
    if max_length is not None:
        out["maxLength"] = max_length
    return out


def _free_object(description: str) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": {}, "description": description}


def events_components() -> dict[str, Any]:
    item_properties = {
        "id": _string("Client-generated id; a re-sent id adds nothing.", max_length=128),
        "type": _ref("TypeEnum"),
        "unit_id": _string("The unit's targetingKey.", max_length=256),
        "timestamp": _string("ISO 8601 date-time, or epoch milliseconds (a number)."),
        "experiment": _string("exposure: the experiment key"),
        "variation": _string("exposure: the variation key"),
        "attributes": _free_object("exposure: attributes for slicing"),
        "name": _string("event: the event name", max_length=100),
        "value": {"type": "number", "format": "double", "description": "event: the value (default 1)"},
        "properties": _free_object("event: free-form properties"),
    }
    return {
        "EventBatchRequest": {
            "type": "object",
            "properties": {
                "events": {
                    "type": "array",
                    "items": _ref("EventItemRequest"),
                    "description": f"At most {MAX_BATCH_ITEMS} items.",
                },
            },
            "required": ["events"],
        },
        "EventBatchResult": {
            "type": "object",
            "properties": {
                "accepted": {"type": "integer"},
                "duplicates": {"type": "integer"},
                "rejected": {"type": "array", "items": _ref("EventRejection")},
            },
            "required": ["accepted", "duplicates", "rejected"],
        },
        "EventItemRequest": {
            "type": "object",
            "properties": item_properties,
            "required": ["id", "timestamp", "type", "unit_id"],
        },
        "EventRejection": {
            "type": "object",
            "properties": {"index": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "index", "message"],
        },
        "TypeEnum": {
            "enum": ["exposure", "event"],
            "type": "string",
            "description": "* `exposure` - exposure\n* `event` - event",
        },
    }


def events_paths() -> dict[str, Any]:
    return {
        "/api/v1/events": {
            "post": {
                "operationId": "events_ingest",
                "description": "Batch of exposures and metric events from an SDK (client or server key).",
                "tags": ["v1"],
                "requestBody": {"content": {_JSON: {"schema": _ref("EventBatchRequest")}}, "required": True},
                "responses": {
                    "202": {"content": {_JSON: {"schema": _ref("EventBatchResult")}}, "description": ""},
                    "400": {"description": "invalid_json or invalid_batch"},
                    "401": {"description": "missing or unknown SDK key"},
                    "413": {"description": "batch_too_large (more than 1,000 items) or payload_too_large"},
                },
            }
        }
    }


def _path_order(path: str) -> str:
    """drf-spectacular's order of paths: ``foo{arg}`` after ``foo/`` and before ``foo/bar``."""
    if path.endswith("/"):
        path = path[:-1] + " "
    return path.replace("{", "!")


def _merged(existing: Mapping[str, Any], added: Mapping[str, Any], order: Callable[[str], str]) -> dict[str, Any]:
    """`existing` with each entry of `added` it lacks placed where the generator would have put it."""
    pending = sorted((name for name in added if name not in existing), key=order)
    out: dict[str, Any] = {}
    for name, value in existing.items():
        while pending and order(pending[0]) < order(name):
            first = pending.pop(0)
            out[first] = added[first]
        out[name] = value
    for name in pending:
        out[name] = added[name]
    return out


def add_sdk_endpoints(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
    result["paths"] = _merged(result.get("paths", {}), events_paths(), _path_order)
    result["paths"].update(sdk_paths())
    components = result.setdefault("components", {})
    components["schemas"] = _merged(components.get("schemas", {}), events_components(), str)
    components["schemas"].update(sdk_components())
    components.setdefault("securitySchemes", {}).update(
        {
            "SdkKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "SdkKeyBearer": {"type": "http", "scheme": "bearer"},
        }
    )
    tags = result.setdefault("tags", [])
    if not any(t.get("name") == "sdk" for t in tags):
        tags.append({"name": "sdk", "description": "Flag evaluation for SDKs: OFREP, evaluate, GrowthBook payload."})
    return result
