"""Evaluate CloudFormation intrinsic functions against known values.

The resolver knows parameters, pseudo parameters, conditions and mappings; what a resource
``Ref``/``Fn::GetAtt`` stands for is asked of two callbacks, so the same code serves the local
stack (which invents physical names) and unit tests. Something it cannot know (``Fn::ImportValue``,
an attribute of a resource the local stack does not create) raises :class:`UnresolvableError`
with the path in the template, and callers decide whether that part is needed.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from maaskit.errors import MaaskitError


class UnresolvableError(MaaskitError):
    """A value the local stack cannot work out from the template alone."""


class _NoValue:
    """``AWS::NoValue``: the property is dropped from its mapping or list."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

RefLookup = Callable[[str], Any]
AttLookup = Callable[[str, str], Any]

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _unresolvable_ref(name: str) -> Any:
    raise UnresolvableError(f"unknown reference {name!r}")


def _unresolvable_att(resource: str, attribute: str) -> Any:
    raise UnresolvableError(f"cannot resolve {resource}.{attribute}")


class Resolver:
    """Turns a template fragment into plain values."""

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any] | None = None,
        pseudo: Mapping[str, Any] | None = None,
        conditions: Mapping[str, Any] | None = None,
        mappings: Mapping[str, Any] | None = None,
        ref: RefLookup = _unresolvable_ref,
        get_att: AttLookup = _unresolvable_att,
    ) -> None:
        self.parameters = dict(parameters or {})
        self.pseudo = dict(pseudo or {})
        self.conditions = dict(conditions or {})
        self.mappings = dict(mappings or {})
        self._ref = ref
        self._get_att = get_att
        self._condition_values: dict[str, bool] = {}

    # entry points ---------------------------------------------------------------------

    def resolve(self, value: Any, where: str = "") -> Any:
        """``value`` with every intrinsic evaluated; ``NO_VALUE`` entries removed."""
        try:
            return self._resolve(value)
        except UnresolvableError as err:
            if where:
                raise UnresolvableError(f"{where}: {err}") from None
            raise

    def condition(self, name: str) -> bool:
        if name not in self._condition_values:
            if name not in self.conditions:
                raise UnresolvableError(f"unknown condition {name!r}")
            self._condition_values[name] = bool(self._resolve(self.conditions[name]))
        return self._condition_values[name]

    # evaluation -----------------------------------------------------------------------

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Condition" and isinstance(argument, str):
                return self.condition(argument)
            if key.startswith("Fn::"):
                return self._function(key[4:], argument)
        resolved = {key: self._resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def ref(self, name: Any) -> Any:
        name = self._resolve(name)
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self._ref(name)

    def get_att(self, resource: str, attribute: str) -> Any:
        return self._get_att(resource, attribute)

    def _function(self, name: str, argument: Any) -> Any:
        method = getattr(self, f"_fn_{name.lower()}", None)
        if method is None:
            raise UnresolvableError(f"Fn::{name} is not supported locally")
        return method(argument)

    def _fn_getatt(self, argument: Any) -> Any:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        resource, attribute = (self._resolve(part) for part in argument)
        return self.get_att(resource, attribute)

    def _fn_sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self._resolve(argument[1])
        else:
            text, variables = argument, {}
        if not isinstance(text, str):
            raise UnresolvableError("Fn::Sub needs a string")

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return str(self.get_att(resource, attribute))
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(replace, text)

    def _fn_join(self, argument: Any) -> str:
        delimiter, items = argument
        return str(self._resolve(delimiter)).join(str(i) for i in self._resolve(items))

    def _fn_select(self, argument: Any) -> Any:
        index, items = argument
        return self._resolve(items)[int(self._resolve(index))]

    def _fn_split(self, argument: Any) -> list[str]:
        delimiter, text = argument
        return str(self._resolve(text)).split(str(self._resolve(delimiter)))

    def _fn_if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self._resolve(when_true if self.condition(name) else when_false)

    def _fn_equals(self, argument: Any) -> bool:
        left, right = (self._resolve(item) for item in argument)
        return bool(str(left) == str(right))

    def _fn_not(self, argument: Any) -> bool:
        return not self._resolve(argument[0])

    def _fn_and(self, argument: Any) -> bool:
        return all(self._resolve(item) for item in argument)

    def _fn_or(self, argument: Any) -> bool:
        return any(self._resolve(item) for item in argument)

    def _fn_findinmap(self, argument: Any) -> Any:
        mapping, top, second = (self._resolve(item) for item in argument[:3])
        try:
            return self.mappings[mapping][top][second]
        except KeyError:
            raise UnresolvableError(f"Fn::FindInMap: no {mapping}/{top}/{second}") from None

    def _fn_base64(self, argument: Any) -> str:
        return base64.b64encode(str(self._resolve(argument)).encode()).decode()

    def _fn_getazs(self, argument: Any) -> list[str]:
        region = self._resolve(argument) or self.pseudo.get("AWS::Region", "us-east-1")
        return [f"{region}{zone}" for zone in "abc"]

    def _fn_tojsonstring(self, argument: Any) -> str:
        return json.dumps(self._resolve(argument), separators=(",", ":"))

    def _fn_length(self, argument: Any) -> int:
        return len(self._resolve(argument))
