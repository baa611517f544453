"""The HTTP API described once: its operations, and the OpenAPI document built from them.

The API function routes by this table, and serves the document made from it, so the routes
that run and the routes described cannot drift apart (a test holds the template's API events
to the same table). Schemas are written by hand, as JSON Schema (OpenAPI 3.1): the simple
predict shape, Open Inference Protocol V2 as KServe documents it, the registry views and the
error body. No pydantic and no generator at run time: the document is plain data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maaskit.registry.catalog import ALIAS_PATTERN, NAME_PATTERN

OPENAPI_VERSION = "3.1.0"

# Status codes and what they mean on this API, for every operation that can answer them.
_STATUS_TEXT = {
    400: "The request is malformed or does not fit the model (message says what to change)",
    404: "No such model, version, alias or route",
    413: "The request or its reply is over the size limit",
    415: "The body is not JSON, or its Content-Encoding is not gzip",
    422: "onnxruntime could not run the model on this input",
    500: "An unexpected error (logged with the request id)",
    502: (
        "Something stored for this model is not what it should be: its file failed its "
        "integrity check, or its alias or manifest is corrupt (other models still serve)"
    ),
    503: "S3 kept failing after retries: try again shortly",
}
_READ_ERRORS = (400, 404, 500, 502, 503)
_RUN_ERRORS = (400, 404, 413, 415, 422, 500, 502, 503)


@dataclass(frozen=True)
class Operation:
    """One route: how it is called, what it takes and what it answers."""

    operation_id: str
    method: str  # upper case, as API Gateway's httpMethod
    path: str  # API Gateway's resource path: /models/{name}/predict
    summary: str
    tag: str
    reply: str  # schema name of the 200 body
    request: str | None = None  # schema name of the (required) JSON body
    query: tuple[str, ...] = ()
    errors: tuple[int, ...] = (500,)
    description: str = ""

    @property
    def path_parameters(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "predict",
        "POST",
        "/models/{name}/predict",
        "Predict with a model",
        "predict",
        reply="PredictResponse",
        request="PredictRequest",
        query=("version", "alias", "truncate"),
        errors=_RUN_ERRORS,
        description='Body `{"input": X}` for a one-input model, or `{"inputs": {"name": X}}`; '
        "X is a tensor as nested lists of numbers, or text (a string or a list of strings) "
        "for a text model. `?version=` or `?alias=` picks the version (default: latest).",
    ),
    Operation(
        "list_models",
        "GET",
        "/models",
        "List models with their versions and aliases",
        "registry",
        reply="ModelList",
    ),
    Operation(
        "describe_model",
        "GET",
        "/models/{name}",
        "Versions, aliases, signatures and metrics of a model",
        "registry",
        reply="ModelDescription",
        errors=(400, 404, 500),
    ),
    Operation("server_metadata", "GET", "/v2", "Server metadata", "v2", reply="ServerMetadata"),
    Operation("server_live", "GET", "/v2/health/live", "Server liveness", "v2", reply="ServerLive"),
    Operation(
        "server_ready", "GET", "/v2/health/ready", "Server readiness", "v2", reply="ServerReady"
    ),
    Operation(
        "model_metadata",
        "GET",
        "/v2/models/{name}",
        "Model metadata",
        "v2",
        reply="ModelMetadata",
        errors=(400, 404, 500),
    ),
    Operation(
        "model_version_metadata",
        "GET",
        "/v2/models/{name}/versions/{version}",
        "Model version metadata",
        "v2",
        reply="ModelMetadata",
        errors=(400, 404, 500),
    ),
    Operation(
        "model_ready",
        "GET",
        "/v2/models/{name}/ready",
        "Model readiness (loads it here)",
        "v2",
        reply="ModelReady",
        errors=_READ_ERRORS,
    ),
    Operation(
        "model_version_ready",
        "GET",
        "/v2/models/{name}/versions/{version}/ready",
        "Model version readiness (loads it here)",
        "v2",
        reply="ModelReady",
        errors=_READ_ERRORS,
    ),
    Operation(
        "infer",
        "POST",
        "/v2/models/{name}/infer",
        "Inference (Open Inference Protocol V2)",
        "v2",
        reply="InferResponse",
        request="InferRequest",
        errors=_RUN_ERRORS,
    ),
    Operation(
        "infer_version",
        "POST",
        "/v2/models/{name}/versions/{version}/infer",
        "Inference on one version (Open Inference Protocol V2)",
        "v2",
        reply="InferResponse",
        request="InferRequest",
        errors=_RUN_ERRORS,
    ),
)
"""Every route of the API but the two that serve its own description (/openapi.json, /swagger)."""

DOCUMENT_ROUTES = (("GET", "/openapi.json"), ("GET", "/swagger"))


# schemas -------------------------------------------------------------------------------

_NAME = {
    "type": "string",
    "pattern": f"^{NAME_PATTERN.pattern}$",
    "description": "1-64 characters from a-z, 0-9, '.', '_', '-'",
}
_ALIAS = {"type": "string", "pattern": f"^{ALIAS_PATTERN.pattern}$"}
_SCALAR = {"type": ["number", "string", "boolean", "null"]}
_V2_DATATYPES = [
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
_DIMENSION = {"type": ["integer", "string", "null"], "description": "a size, or a symbolic name"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "what was wrong, and what to do"}
        },
    },
    "Tensor": {
        "description": "A tensor as nested lists (a scalar is rank 0); strings for text or BYTES.",
        "anyOf": [_SCALAR, {"type": "array", "items": _ref("Tensor")}],
    },
    "PredictRequest": {
        "type": "object",
        "description": 'Exactly one of "input" (one-input models) or "inputs" (by name).',
        "properties": {
            "input": _ref("Tensor"),
            "inputs": {"type": "object", "additionalProperties": _ref("Tensor")},
            "version": {"type": ["string", "integer"], "description": "same as ?version="},
            "alias": {**_ALIAS, "description": "same as ?alias="},
        },
        "additionalProperties": False,
        "oneOf": [{"required": ["input"]}, {"required": ["inputs"]}],
        "example": {"input": [[5.1, 3.5, 1.4, 0.2]]},
    },
    "PredictResponse": {
        "type": "object",
        "required": ["model", "version", "outputs"],
        "properties": {
            "model": {"type": "string"},
            "version": {"type": "integer"},
            "outputs": {"type": "object", "additionalProperties": _ref("Tensor")},
            "embedding": {**_ref("Tensor"), "description": "text models: pooled embeddings"},
            "label": {"description": "text classifiers: one label per text", **_ref("Tensor")},
            "probabilities": {**_ref("Tensor"), "description": "text classifiers"},
            "truncated": {
                "description": "text models: whether each text was cut to the model's length",
                **_ref("Tensor"),
            },
        },
    },
    "ModelSummary": {
        "type": "object",
        "required": ["name", "versions", "aliases"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "integer"}},
            "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    },
    "ModelList": {
        "type": "object",
        "required": ["models"],
        "properties": {
            "models": {"type": "array", "items": _ref("ModelSummary")},
            "skipped": {
                "description": "Models whose aliases or folder cannot be read, and why",
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "reason"],
                    "properties": {"name": {"type": "string"}, "reason": {"type": "string"}},
                },
            },
        },
    },
    "TensorSpec": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string", "enum": _V2_DATATYPES},
            "shape": {"type": "array", "items": _DIMENSION},
        },
    },
    "Signature": {
        "type": "object",
        "required": ["inputs", "outputs"],
        "properties": {
            "inputs": {"type": "array", "items": _ref("TensorSpec")},
            "outputs": {"type": "array", "items": _ref("TensorSpec")},
        },
    },
    "Manifest": {
        "type": "object",
        "required": ["name", "version", "sha256", "size", "signature"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "integer"},
            "artifact": {"type": "string"},
            "format": {"type": "string"},
            "sha256": {"type": "string"},
            "size": {"type": "integer"},
            "signature": _ref("Signature"),
            "created_at": {"type": ["string", "null"]},
            "metrics": {"type": "object"},
            "metadata": {"type": "object"},
            "lineage": {"type": "object"},
        },
    },
    "ModelDescription": {
        "type": "object",
        "required": ["name", "aliases", "versions"],
        "properties": {
            "name": {"type": "string"},
            "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
            "versions": {"type": "array", "items": _ref("Manifest")},
        },
    },
    # Open Inference Protocol V2 (KServe's REST definitions) --------------------------
    "ServerMetadata": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "ServerLive": {
        "type": "object",
        "required": ["live"],
        "properties": {"live": {"type": "boolean"}},
    },
    "ServerReady": {
        "type": "object",
        "required": ["ready"],
        "properties": {"ready": {"type": "boolean"}},
    },
    "MetadataTensor": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string", "enum": _V2_DATATYPES},
            "shape": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "-1 for a dimension of any size",
            },
        },
    },
    "ModelMetadata": {
        "type": "object",
        "required": ["name", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": _ref("MetadataTensor")},
            "outputs": {"type": "array", "items": _ref("MetadataTensor")},
        },
    },
    "ModelReady": {
        "type": "object",
        "required": ["name", "ready"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "ready": {"type": "boolean"},
        },
    },
    "Parameters": {
        "type": "object",
        "description": "free-form parameters (V2 $parameters)",
    },
    "RequestInput": {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": _V2_DATATYPES},
            "parameters": _ref("Parameters"),
            "data": {
                "description": "the elements in row-major order, flat or nested",
                "type": "array",
                "items": _ref("Tensor"),
            },
        },
    },
    "RequestOutput": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "parameters": _ref("Parameters")},
    },
    "InferRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": _ref("Parameters"),
            "inputs": {"type": "array", "minItems": 1, "items": _ref("RequestInput")},
            "outputs": {"type": "array", "items": _ref("RequestOutput")},
        },
        "example": {
            "inputs": [
                {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
            ]
        },
    },
    "ResponseOutput": {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string", "enum": _V2_DATATYPES},
            "parameters": _ref("Parameters"),
            "data": {"type": "array", "items": _ref("Tensor")},
        },
    },
    "InferResponse": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": _ref("Parameters"),
            "outputs": {"type": "array", "items": _ref("ResponseOutput")},
        },
    },
}

PARAMETERS: dict[str, dict[str, Any]] = {
    "name": {"in": "path", "description": "the model's name", "schema": _NAME},
    "version": {
        "in": "path",
        "description": "a version number",
        "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"},
    },
    "query.version": {
        "name": "version",
        "in": "query",
        "required": False,
        "description": "a version number (not with alias)",
        "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"},
    },
    "query.alias": {
        "name": "alias",
        "in": "query",
        "required": False,
        "description": "an alias such as production (default: latest)",
        "schema": _ALIAS,
    },
    "query.truncate": {
        "name": "truncate",
        "in": "query",
        "required": False,
        "description": "text models: cut texts longer than the model takes instead of refusing them",
        "schema": {"type": "boolean"},
    },
}


# the document --------------------------------------------------------------------------


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(op: Operation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "required": True, **PARAMETERS[name]} for name in op.path_parameters
    ]
    parameters += [PARAMETERS[f"query.{name}"] for name in op.query]
    responses: dict[str, Any] = {"200": {"description": "OK", "content": _json(_ref(op.reply))}}
    for status in op.errors:
        responses[str(status)] = {
            "description": _STATUS_TEXT[status],
            "content": _json(_ref("Error")),
        }
    document: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if op.description:
        document["description"] = op.description
    if parameters:
        document["parameters"] = parameters
    if op.request is not None:
        document["requestBody"] = {"required": True, "content": _json(_ref(op.request))}
    return document


def document(*, version: str, server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API, served at ``server_url`` (its stage)."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "maaskit",
            "version": version,
            "description": "ONNX models served from S3: a simple predict shape and Open "
            "Inference Protocol V2. Errors are JSON objects with one field, error.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }
