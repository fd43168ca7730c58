"""OpenAPI description of the SDK endpoints, added to the drf-spectacular schema by a
post-processing hook (the endpoints are plain Django views, which drf-spectacular does not see).

It describes what the service answers, including the errors that the protocols leave open
(413 for large bodies, 429 with an integer ``Retry-After``, 503 before any snapshot exists).
"""

from __future__ import annotations

from typing import Any

__all__ = ["add_sdk_endpoints", "sdk_components", "sdk_paths"]

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
                "parameters": [_if_none_match()],
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
    }


def add_sdk_endpoints(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
    result.setdefault("paths", {}).update(sdk_paths())
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(sdk_components())
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
