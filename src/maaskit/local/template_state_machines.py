"""The template's state machines: definitions loaded, ``DefinitionSubstitutions`` applied."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from maaskit.local import cfn_yaml
from maaskit.local.template_model import STATE_MACHINE_TYPES, StateMachineDef, TemplateError
from maaskit.local.template_source import TemplateSource, env_value


def _substitute(value: Any, substitutions: Mapping[str, str]) -> Any:
    """Apply ``DefinitionSubstitutions`` to every string in a state machine definition."""
    if isinstance(value, str):
        return re.sub(
            r"\$\{([^}]+)\}",
            lambda m: substitutions.get(m.group(1), m.group(0)),
            value,
        )
    if isinstance(value, list):
        return [_substitute(item, substitutions) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, substitutions) for key, item in value.items()}
    return value


def _definition(source: TemplateSource, logical_id: str, props: Mapping[str, Any]) -> Any:
    if "Definition" in props:
        return source.resolver.resolve(props["Definition"], f"{logical_id}.Definition")
    if "DefinitionString" in props:
        text = source.resolver.resolve(props["DefinitionString"], logical_id)
        return json.loads(text)
    uri = props.get("DefinitionUri")
    if isinstance(uri, str):
        path = source.root / uri
        if not path.is_file():
            raise TemplateError(f"{logical_id}.DefinitionUri: {path} does not exist")
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            return json.loads(text)
        return cfn_yaml.loads(text)
    raise TemplateError(f"{logical_id}: only local DefinitionUri or inline definitions run")


def read_state_machines(source: TemplateSource) -> list[StateMachineDef]:
    """State machines with their definitions loaded and ``DefinitionSubstitutions`` applied."""
    resolve = source.resolver.resolve
    found = []
    for logical_id in source.of_types(STATE_MACHINE_TYPES):
        props = source.properties(logical_id)
        serverless = source.resources[logical_id]["Type"] == "AWS::Serverless::StateMachine"
        definition = _definition(source, logical_id, props)
        substitutions = resolve(
            props.get("DefinitionSubstitutions") or {},
            f"{logical_id}.DefinitionSubstitutions",
        )
        kind = props.get("Type" if serverless else "StateMachineType") or "STANDARD"
        found.append(
            StateMachineDef(
                logical_id=logical_id,
                name=source.names.state_machine_name(logical_id),
                definition=_substitute(
                    definition, {k: env_value(v) for k, v in substitutions.items()}
                ),
                kind=str(resolve(kind)),
            )
        )
    return found
