"""Read CloudFormation/SAM YAML: the short intrinsic tags become their long JSON forms.

``!Ref X`` → ``{"Ref": "X"}``, ``!GetAtt A.B`` → ``{"Fn::GetAtt": ["A", "B"]}``, ``!Condition C``
→ ``{"Condition": "C"}``, and every other ``!Name`` → ``{"Fn::Name": ...}``, so the resolver
sees one form whichever way the template was written. Dates stay strings, as CloudFormation
reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_TAGS = (
    "Ref",
    "Condition",
    "GetAtt",
    "Sub",
    "Join",
    "Select",
    "Split",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "FindInMap",
    "Base64",
    "Cidr",
    "GetAZs",
    "ImportValue",
    "Transform",
    "ToJsonString",
    "Length",
)


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that knows CloudFormation's short-form tags."""


# CloudFormation keeps unquoted dates such as 2010-09-09 as strings.
CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct(loader: CfnLoader, tag: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise yaml.constructor.ConstructorError(
        None, None, f"unexpected node for !{tag}", node.start_mark
    )


def _make_constructor(tag: str) -> Any:
    def construct(loader: CfnLoader, node: yaml.Node) -> Any:
        value = _construct(loader, tag, node)
        if tag in ("Ref", "Condition"):
            return {tag: value}
        if tag == "GetAtt" and isinstance(value, str):
            resource, _, attribute = value.partition(".")
            value = [resource, attribute]
        return {f"Fn::{tag}": value}

    return construct


for _tag in _TAGS:
    CfnLoader.add_constructor(f"!{_tag}", _make_constructor(_tag))


def loads(text: str) -> dict[str, Any]:
    """Parse a template (YAML or JSON) into plain dicts and lists."""
    document = yaml.load(text, Loader=CfnLoader)  # nosec B506  # CfnLoader is a SafeLoader
    if not isinstance(document, dict):
        raise ValueError("a template must be a mapping at its top level")
    return document


def load(path: str | Path) -> dict[str, Any]:
    return loads(Path(path).read_text(encoding="utf-8"))
