"""The template's Lambda functions: code folder, handler, ``Globals`` merged, environment."""

from __future__ import annotations

from typing import Any

from maaskit.local.template_model import FUNCTION_TYPES, FunctionDef
from maaskit.local.template_source import TemplateSource, env_value, merge_globals


def _function_properties(source: TemplateSource, logical_id: str) -> dict[str, Any]:
    own = source.properties(logical_id)
    if source.resources[logical_id]["Type"] == "AWS::Serverless::Function":
        return merge_globals(source.globals.get("Function") or {}, own)
    return own


def read_functions(source: TemplateSource) -> list[FunctionDef]:
    """Every function whose code is a local folder (``CodeUri``), Globals merged."""
    resolve = source.resolver.resolve
    found = []
    for logical_id in source.of_types(FUNCTION_TYPES):
        props = _function_properties(source, logical_id)
        where = f"{logical_id}"
        code = resolve(props.get("CodeUri", props.get("Code")), where)
        if not isinstance(code, str):
            source.notes.append(f"{logical_id}: code is not a local folder; not deployed")
            continue
        if props.get("PackageType") == "Image":
            source.notes.append(f"{logical_id}: image functions are not run locally")
            continue
        variables = (props.get("Environment") or {}).get("Variables") or {}
        resolved = resolve(variables, f"{where}.Environment")
        found.append(
            FunctionDef(
                logical_id=logical_id,
                name=source.names.function_name(logical_id),
                code_dir=(source.root / code).resolve(),
                handler=str(resolve(props.get("Handler"), where)),
                environment={k: env_value(v) for k, v in resolved.items()},
                timeout_s=float(resolve(props.get("Timeout", 3), where)),
                memory_mb=int(resolve(props.get("MemorySize", 128), where)),
            )
        )
    return found
