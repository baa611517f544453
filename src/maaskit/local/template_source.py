"""The parsed template as the readers of functions, buckets, APIs and state machines see it.

One :class:`TemplateSource` holds the resources, ``Globals``, the resolver with the chosen
parameters, the physical names, and the notes of what was left out; the readers in
``template_*`` modules each turn one kind of resource into its description.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maaskit.local.intrinsics import Resolver
from maaskit.local.template_names import PhysicalNames


@dataclass
class TemplateSource:
    resources: Mapping[str, Mapping[str, Any]]
    globals: Mapping[str, Any]
    root: Path
    resolver: Resolver
    names: PhysicalNames
    notes: list[str] = field(default_factory=list)  # what was ignored, for the stack's log

    def enabled(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.resolver.condition(condition)

    def of_types(self, types: tuple[str, ...]) -> list[str]:
        return [
            logical_id
            for logical_id, resource in self.resources.items()
            if resource.get("Type") in types and self.enabled(logical_id)
        ]

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resources.get(logical_id, {}).get("Properties") or {})

    def events(self, logical_id: str, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """A SAM function's ``Events`` of one ``Type``: (name, properties)."""
        events = self.properties(logical_id).get("Events") or {}
        return [
            (name, dict(event.get("Properties") or {}))
            for name, event in events.items()
            if event.get("Type") == kind
        ]


def merge_globals(defaults: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rule: mappings merge, lists append, anything else is overridden."""
    merged = copy.deepcopy(dict(defaults))
    for key, value in own.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = current + value
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def ref_target(value: Any) -> str | None:
    """The logical id of a plain ``!Ref``, else ``None``."""
    if isinstance(value, dict) and set(value) == {"Ref"} and isinstance(value["Ref"], str):
        return value["Ref"]
    return None


def as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(item) for item in value)


def env_value(value: Any) -> str:
    """A resolved value as an environment variable (or substitution) holds it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
