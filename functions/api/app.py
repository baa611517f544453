"""The HTTP API: the simple predict shape, Open Inference Protocol V2, the registry views.

A thin adapter: routes parse the request, call ``maaskit.serving``, and encode the reply.
Replies are encoded here with a numpy-aware encoder (not Powertools' serializer), so
tensors cost ~0.1 ms instead of milliseconds, and a reply over Lambda's 6 MB limit turns
into a clear 413 instead of an opaque gateway error.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext

from maaskit import __version__
from maaskit.errors import MaaskitError
from maaskit.protocol import encode_json
from maaskit.runtime import LoadedModel, Runtime
from maaskit.serving import InferenceService
from maaskit.settings import Settings

_MAX_RESPONSE_BYTES = 6 * 1024 * 1024 - 4096  # Lambda's response limit, less the envelope

# Registry and health routes record no metric by design: not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # S3 calls as subsegments; nothing else to patch
metrics = Metrics(namespace="maaskit")
settings = Settings.from_env()


def _record_load(model: LoadedModel) -> None:
    logger.info("model loaded", model=model.name, version=model.version, load_ms=model.load_ms)
    metrics.add_metric(name="ModelLoadMs", unit=MetricUnit.Milliseconds, value=model.load_ms)


def _record_inference(model: LoadedModel, elapsed_ms: float) -> None:
    metrics.add_dimension(name="model", value=model.name)
    metrics.add_dimension(name="version", value=str(model.version))
    metrics.add_metric(name="InferenceMs", unit=MetricUnit.Milliseconds, value=elapsed_ms)


service = InferenceService(
    Runtime.from_settings(settings, on_load=_record_load),
    max_request_bytes=settings.max_request_bytes,
)
service.runtime.prepare()
app = APIGatewayRestResolver()


def _reply(payload: Any, status: int = 200) -> Response[str]:
    body = encode_json(payload)
    if len(body) > _MAX_RESPONSE_BYTES:
        return _error(
            413,
            f"the reply would be {len(body)} bytes, over Lambda's 6 MB limit: send fewer rows "
            "per request, or use batch predictions through S3",
        )
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body.decode()
    )


def _error(status: int, message: str) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=encode_json({"error": message}).decode(),
    )


def _query(name: str) -> str | None:
    return app.current_event.get_query_string_value(name) or None


def _body() -> str | None:
    event = app.current_event
    return event.decoded_body if event.body is not None else None


# the simple shape ------------------------------------------------------------------


@app.post("/models/<name>/predict", summary="Predict with a model", tags=["predict"])
def predict(name: str) -> Response[str]:
    """Body `{"input": X}` (single-input models) or `{"inputs": {"name": X}}`; `?version=` or `?alias=`."""
    return _reply(
        service.predict(
            name, _body(), version=_query("version"), alias=_query("alias"), timer=_record_inference
        )
    )


# registry views --------------------------------------------------------------------


@app.get("/models", summary="List models with their versions and aliases", tags=["registry"])
def list_models() -> Response[str]:
    return _reply(service.list_models())


@app.get("/models/<name>", summary="Versions, aliases, signatures and metrics", tags=["registry"])
def describe_model(name: str) -> Response[str]:
    return _reply(service.describe(name))


# Open Inference Protocol V2 ----------------------------------------------------------


@app.get("/v2", summary="Server metadata", tags=["v2"])
def server_metadata() -> Response[str]:
    return _reply({"name": "maaskit", "version": __version__, "extensions": []})


@app.get("/v2/health/live", summary="Server liveness", tags=["v2"])
def live() -> Response[str]:
    return _reply({"live": True})


@app.get("/v2/health/ready", summary="Server readiness", tags=["v2"])
def ready() -> Response[str]:
    return _reply({"ready": True})


@app.get("/v2/models/<name>", summary="Model metadata", tags=["v2"])
def model_metadata(name: str) -> Response[str]:
    return _reply(service.metadata(name))


@app.get("/v2/models/<name>/versions/<version>", summary="Model version metadata", tags=["v2"])
def model_version_metadata(name: str, version: str) -> Response[str]:
    return _reply(service.metadata(name, version))


@app.get("/v2/models/<name>/ready", summary="Model readiness", tags=["v2"])
def model_ready(name: str) -> Response[str]:
    return _reply(service.ready(name))


@app.get(
    "/v2/models/<name>/versions/<version>/ready", summary="Model version readiness", tags=["v2"]
)
def model_version_ready(name: str, version: str) -> Response[str]:
    return _reply(service.ready(name, version))


@app.post("/v2/models/<name>/infer", summary="Inference (Open Inference Protocol V2)", tags=["v2"])
def infer(name: str) -> Response[str]:
    return _reply(service.infer(name, _body(), timer=_record_inference))


@app.post(
    "/v2/models/<name>/versions/<version>/infer",
    summary="Inference on one version (Open Inference Protocol V2)",
    tags=["v2"],
)
def infer_version(name: str, version: str) -> Response[str]:
    return _reply(service.infer(name, _body(), version=version, timer=_record_inference))


# the API describing itself -----------------------------------------------------------


def _openapi_document() -> str:
    """Generated from the routes on demand: pydantic, which it needs, stays out of cold start."""
    from aws_lambda_powertools.event_handler.openapi.models import Server

    stage = app.current_event.request_context.stage
    return app.get_openapi_json_schema(
        title="maaskit",
        version=__version__,
        description="ONNX models served from S3: a simple predict shape and Open Inference Protocol V2.",
        servers=[Server(url=f"/{stage}" if stage else "/")],
    )


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=_openapi_document()
    )


@app.get("/swagger", include_in_schema=False)
def swagger() -> Response[str]:
    """Swagger UI with its script and styles inlined (no CDN needed)."""
    from aws_lambda_powertools.event_handler.openapi import swagger_ui
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    assets = Path(swagger_ui.__file__).parent
    page = generate_swagger_html(
        _openapi_document().replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
    )
    return Response(status_code=200, content_type="text/html", body=page)


# errors --------------------------------------------------------------------------------


@app.exception_handler(MaaskitError)  # type: ignore[untyped-decorator]
def handle_known_error(err: MaaskitError) -> Response[str]:
    if err.http_status >= 500:
        logger.error("request failed", error=err.message, error_type=type(err).__name__)
    else:
        logger.info("request refused", error=err.message, status=err.http_status)
    return _error(err.http_status, err.message)


@app.not_found
def handle_not_found(_: NotFoundError) -> Response[str]:
    event = app.current_event
    return _error(
        404, f"no route for {event.http_method} {event.path}: see GET /openapi.json or /swagger"
    )


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def handle_unexpected(_: Exception) -> Response[str]:
    logger.exception("unexpected error")
    request_id = app.lambda_context.aws_request_id if app.lambda_context else "unknown"
    return _error(500, f"internal error (request id {request_id}); it has been logged")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
# Powertools prints the cold-start record even with metrics disabled (the local stack).
@metrics.log_metrics(capture_cold_start_metric=not is_metrics_disabled())
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # With POWERTOOLS_METRICS_DISABLED (the local stack) the flush is skipped and nothing is
    # cleared, so one request's model dimension would leak into the next: start clean.
    metrics.clear_metrics()
    return app.resolve(event, context)
