"""The HTTP API: the simple predict shape, Open Inference Protocol V2, the registry views.

A thin adapter: it routes the API Gateway event by its resource path (the operations of
``maaskit.serving.openapi``, the same table the template's events and the served OpenAPI document
come from), calls ``maaskit.serving.service``, and encodes the reply once, with a numpy-aware
encoder; a reply over Lambda's 6 MB limit turns into a clear 413. Logs and metrics are
JSON lines (``maaskit.telemetry``); the X-Ray SDK is imported, and botocore patched, only
when tracing is on. Together that keeps the request path to tens of microseconds over
``session.run`` and the cold start to the imports the model itself needs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from maaskit import __version__
from maaskit.components import Components
from maaskit.errors import MaaskitError
from maaskit.serving import openapi
from maaskit.serving.http_body import request_bytes
from maaskit.serving.protocol import encode_json
from maaskit.serving.runtime import LoadedModel
from maaskit.settings import Settings
from maaskit.telemetry import Logger, Metrics

_MAX_RESPONSE_BYTES = 6 * 1024 * 1024 - 4096  # Lambda's response limit, less the envelope

settings = Settings.from_env()
logger = Logger(settings.service_name, settings.log_level)
metrics = Metrics(
    settings.metrics_namespace, settings.service_name, enabled=settings.metrics_enabled
)
_model_dimensions: dict[tuple[str, int], dict[str, str]] = {}


def _dimensions(model: LoadedModel) -> dict[str, str]:
    key = (model.name, model.version)
    found = _model_dimensions.get(key)
    if found is None:
        found = _model_dimensions[key] = {"model": model.name, "version": str(model.version)}
    return found


def _record_load(model: LoadedModel) -> None:
    logger.info("model loaded", model=model.name, version=model.version, load_ms=model.load_ms)
    metrics.record("ModelLoadMs", model.load_ms, "Milliseconds", _dimensions(model))


_inference_recorders: dict[tuple[str, int], Callable[[float], None]] = {}


def _record_inference(model: LoadedModel, elapsed_ms: float) -> None:
    key = (model.name, model.version)
    record = _inference_recorders.get(key)
    if record is None:
        record = _inference_recorders[key] = metrics.recorder(
            "InferenceMs", "Milliseconds", _dimensions(model)
        )
    record(elapsed_ms)


def _record_integrity_failure(name: str, version: int) -> None:
    """One ``IntegrityFailures`` point per refused artifact: the template's alarm sums them."""
    metrics.record("IntegrityFailures", 1, "Count", {"model": name})
    logger.error("model failed its integrity check", model=name, version=version)


core = Components(
    settings, on_model_load=_record_load, on_integrity_failure=_record_integrity_failure
)
service = core.inference
service.runtime.prepare()
for _ref, _err in service.preload(settings.preload_models):
    logger.error("could not preload a model", model=_ref, error=_err.message)


# the request -----------------------------------------------------------------------------


class Request:
    """What the routes read from an API Gateway REST proxy event."""

    __slots__ = ("_headers", "event", "params")

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self.params: dict[str, str] = event.get("pathParameters") or {}
        self._headers: dict[str, str] | None = None

    def query(self, name: str) -> str | None:
        return (self.event.get("queryStringParameters") or {}).get(name) or None

    def header(self, name: str) -> str | None:
        """Case-insensitive, as HTTP headers are (API Gateway keeps the client's casing)."""
        if self._headers is None:
            given = self.event.get("headers") or {}
            self._headers = {k.lower(): v for k, v in given.items()}
        return self._headers.get(name.lower())

    def body(self) -> bytes | None:
        """The JSON bytes of the body: 415 unless it is JSON, gzip inflated within the limit."""
        return request_bytes(
            self.event.get("body"),
            is_base64=bool(self.event.get("isBase64Encoded")),
            content_type=self.header("content-type"),
            content_encoding=self.header("content-encoding"),
            max_bytes=settings.max_request_bytes,
        )


# the routes: one function per operation of maaskit.serving.openapi -----------------------------


def predict(request: Request) -> Any:
    return service.predict(
        request.params["name"],
        request.body(),
        version=request.query("version"),
        alias=request.query("alias"),
        truncate=request.query("truncate"),
        timer=_record_inference,
    )


def list_models(_: Request) -> Any:
    return service.list_models()


def describe_model(request: Request) -> Any:
    return service.describe(request.params["name"])


def server_metadata(_: Request) -> Any:
    return {"name": "maaskit", "version": __version__, "extensions": []}


def server_live(_: Request) -> Any:
    return {"live": True}


def server_ready(_: Request) -> Any:
    return {"ready": True}


def model_metadata(request: Request) -> Any:
    return service.metadata(request.params["name"])


def model_version_metadata(request: Request) -> Any:
    return service.metadata(request.params["name"], request.params["version"])


def model_ready(request: Request) -> Any:
    return service.ready(request.params["name"])


def model_version_ready(request: Request) -> Any:
    return service.ready(request.params["name"], request.params["version"])


def infer(request: Request) -> Any:
    return service.infer(request.params["name"], request.body(), timer=_record_inference)


def infer_version(request: Request) -> Any:
    return service.infer(
        request.params["name"],
        request.body(),
        version=request.params["version"],
        timer=_record_inference,
    )


Route = Callable[[Request], Any]
ROUTES: dict[tuple[str, str], Route] = {
    (op.method, op.path): globals()[op.operation_id] for op in openapi.OPERATIONS
}


# the API describing itself -------------------------------------------------------------

_documents: dict[str, str] = {}


def _document(request: Request) -> str:
    """The OpenAPI document, its server URL the stage the request came through."""
    stage = (request.event.get("requestContext") or {}).get("stage") or ""
    found = _documents.get(stage)
    if found is None:
        server = f"/{stage}" if stage else "/"
        found = encode_json(openapi.document(version=__version__, server_url=server)).decode()
        _documents[stage] = found
    return found


def openapi_json(request: Request) -> dict[str, Any]:
    return _response(200, _document(request))


def swagger(request: Request) -> dict[str, Any]:
    """Swagger UI with its script and styles inlined (no CDN needed)."""
    page = _SWAGGER_PAGE.format(
        css=_swagger_asset("swagger-ui.min.css"),
        js=_swagger_asset("swagger-ui-bundle.min.js"),
        spec=_document(request).replace("</", "<\\/"),
    )
    return _response(200, page, content_type="text/html; charset=utf-8")


def _swagger_asset(name: str) -> str:
    """Swagger UI's files as Powertools ships them, found without importing Powertools."""
    found = importlib.util.find_spec("aws_lambda_powertools")
    if found is None or found.origin is None:
        raise MaaskitError("Swagger UI is not installed with this function")
    folder = Path(found.origin).parent / "event_handler" / "openapi" / "swagger_ui"
    return (folder / name).read_text(encoding="utf-8")


_SWAGGER_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>maaskit API</title><style>{css}</style></head>
<body><div id="swagger-ui"></div><script>{js}</script>
<script>SwaggerUIBundle({{dom_id: "#swagger-ui", spec: {spec}, deepLinking: true}});</script>
</body></html>"""

DOCUMENT_ROUTES: dict[tuple[str, str], Callable[[Request], dict[str, Any]]] = {
    ("GET", "/openapi.json"): openapi_json,
    ("GET", "/swagger"): swagger,
}


# replies ---------------------------------------------------------------------------------


def _response(status: int, body: str, content_type: str = "application/json") -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type},
        "body": body,
        "isBase64Encoded": False,
    }


def _error(status: int, message: str) -> dict[str, Any]:
    return _response(status, encode_json({"error": message}).decode())


def _reply(payload: Any) -> dict[str, Any]:
    body = encode_json(payload)
    if len(body) > _MAX_RESPONSE_BYTES:
        return _error(
            413,
            f"the reply would be {len(body)} bytes, over Lambda's 6 MB limit: send fewer rows "
            "per request, or use batch predictions through S3",
        )
    return _response(200, body.decode())


def _dispatch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    key = (event.get("httpMethod") or "", event.get("resource") or "")
    route = ROUTES.get(key)
    try:
        if route is not None:
            return _reply(route(Request(event)))
        document_route = DOCUMENT_ROUTES.get(key)
        if document_route is not None:
            return document_route(Request(event))
        return _error(
            404,
            f"no route for {key[0]} {event.get('path')}: see GET /openapi.json or /swagger",
        )
    except MaaskitError as err:
        if err.http_status >= 500:
            logger.error("request failed", error=err.message, error_type=type(err).__name__)
        else:
            logger.info("request refused", error=err.message, status=err.http_status)
        return _error(err.http_status, err.message)
    except Exception:
        logger.exception("unexpected error")
        request_id = getattr(context, "aws_request_id", "unknown")
        return _error(500, f"internal error (request id {request_id}); it has been logged")


# the handler -------------------------------------------------------------------------------

_cold = [True]


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.bind(
        function_request_id=context.aws_request_id,
        correlation_id=(event.get("requestContext") or {}).get("requestId"),
    )
    if _cold[0]:
        _cold[0] = False
        logger.bind(function_name=context.function_name, cold_start=True)
        metrics.record("ColdStart", 1, "Count", {"function_name": context.function_name})
    elif logger.keys.get("cold_start"):
        logger.bind(cold_start=False)
    return _dispatch(event, context)


def _traced(handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> Any:
    """X-Ray segments for the handler and every botocore (S3) call, when tracing is on."""
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service=settings.service_name, patch_modules=["botocore"])
    return tracer.capture_lambda_handler(handler, capture_response=False)


lambda_handler = _traced(_handle) if settings.tracing_enabled else _handle
