"""The template's REST APIs and their routes, from the functions' ``Api`` events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maaskit.local.template_model import (
    IMPLICIT_API,
    IMPLICIT_API_STAGE,
    ApiDef,
    Route,
    TemplateError,
)
from maaskit.local.template_source import TemplateSource, merge_globals, ref_target

_SAM_FUNCTION = ("AWS::Serverless::Function",)


def uses_implicit_api(source: TemplateSource) -> bool:
    """Whether some ``Api`` event names no ``RestApiId`` (SAM then creates one)."""
    return any(
        "RestApiId" not in props
        for function_id in source.of_types(_SAM_FUNCTION)
        for _, props in source.events(function_id, "Api")
    )


def _routes(source: TemplateSource) -> dict[str, list[Route]]:
    resolve = source.resolver.resolve
    routes: dict[str, list[Route]] = {}
    for function_id in source.of_types(_SAM_FUNCTION):
        for _, props in source.events(function_id, "Api"):
            api_id = ref_target(props.get("RestApiId")) or IMPLICIT_API
            auth = resolve(props.get("Auth") or {}, function_id)
            routes.setdefault(api_id, []).append(
                Route(
                    api_id=api_id,
                    path="/" + str(resolve(props["Path"])).strip("/"),
                    method=str(resolve(props["Method"])).upper(),
                    function_id=function_id,
                    function_name=source.names.function_name(function_id),
                    api_key_required=bool(auth.get("ApiKeyRequired", False)),
                )
            )
    for function_id in source.of_types(_SAM_FUNCTION):
        for kind in ("HttpApi",):
            if source.events(function_id, kind):
                source.notes.append(f"{function_id}: {kind} events are not served locally")
    return routes


def _auth(auth: Mapping[str, Any], routes: list[Route]) -> str:
    authorizer = auth.get("DefaultAuthorizer")
    if authorizer == "AWS_IAM":
        return "iam"
    if authorizer:
        return str(authorizer)
    if auth.get("ApiKeyRequired") or any(route.api_key_required for route in routes):
        return "api key"
    return "none"


def read_apis(source: TemplateSource) -> list[ApiDef]:
    """REST APIs and their routes, from the functions' ``Api`` events."""
    resolve = source.resolver.resolve
    defaults = source.globals.get("Api") or {}
    found = []
    for api_id, api_routes in _routes(source).items():
        if api_id == IMPLICIT_API:
            props, stage = dict(defaults), IMPLICIT_API_STAGE
        else:
            if source.resources.get(api_id, {}).get("Type") != "AWS::Serverless::Api":
                raise TemplateError(f"RestApiId {api_id} is not an AWS::Serverless::Api")
            props = merge_globals(defaults, source.properties(api_id))
            stage = str(resolve(props.get("StageName", "Prod"), api_id))
        binary = resolve(props.get("BinaryMediaTypes") or [], api_id)
        found.append(
            ApiDef(
                logical_id=api_id,
                stage=stage,
                rest_api_id=source.names.api_id(api_id),
                binary_media_types=tuple(str(t).replace("~1", "/") for t in binary),
                auth=_auth(resolve(props.get("Auth") or {}, api_id), api_routes),
                routes=tuple(api_routes),
            )
        )
    return found
