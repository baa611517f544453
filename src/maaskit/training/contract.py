"""Typed JSON contracts: msgspec structs, decoded with errors a person can act on.

msgspec checks types, ranges, required and unknown fields in one C pass and says where
(``at `$.optimizer.momentum` ``). This module turns that into the message our users read:
the field's path, what was wrong, what is accepted, and a did-you-mean for a misspelt key,
because the reader is looking at a failed run and their own JSON, not at this code.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from maaskit.errors import InvalidRequest

if TYPE_CHECKING:
    from msgspec import inspect as msgspec_inspect

T = TypeVar("T")
PathKey = str | int

_LOCATED = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_MISSING = re.compile(r"^Object missing required field `(?P<name>.+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>.+)`$")
_ABSENT = object()


class Subject:
    """Who the JSON belongs to, for the messages: ``training spec field 'epochs': ...``.

    ``nouns`` names what a choice chooses, by field path (``"optimizer.type"``:
    ``"optimizer"``), so a bad value reads ``unknown optimizer 'adamw'``.
    """

    def __init__(self, name: str, nouns: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.nouns = dict(nouns or {})

    def fail(self, path: str, message: str) -> InvalidRequest:
        return InvalidRequest(f"{self.name} field {path!r}: {message}")

    def noun(self, path: str) -> str:
        return self.nouns.get(path, path.rsplit(".", 1)[-1] or self.name)


def decode(data: Any, kind: type[T], subject: Subject) -> T:
    """``data`` (decoded JSON) as ``kind``, or ``InvalidRequest`` naming the field.

    Integral floats count as integers (``3.0`` is the integer JSON Schema says it is) and
    non-finite numbers are refused, as JSON has none and training would diverge on one.
    """
    clean = _normalise_numbers(data, [], subject)
    try:
        return msgspec.convert(clean, kind, strict=True)
    except msgspec.ValidationError as err:
        raise explain(err, clean, kind, subject) from None


def plain(value: Any) -> Any:
    """``value`` (structs, tuples, ...) as the lists and dicts it reads back as from JSON."""
    return msgspec.json.decode(msgspec.json.encode(value))


class JsonRecord(msgspec.Struct, frozen=True):
    """A struct that travels as JSON: a step's state, a record Prepare wrote."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = plain(self)
        return data


def dotted(keys: list[PathKey]) -> str:
    """``["architecture", "hidden", 1]`` as ``architecture.hidden[1]``."""
    text = ""
    for key in keys:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text


def _normalise_numbers(value: Any, keys: list[PathKey], subject: Subject) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise subject.fail(dotted(keys), f"must be a finite number, got {value!r}")
        return int(value) if value.is_integer() and abs(value) < 2**63 else value
    if isinstance(value, Mapping):
        return {k: _normalise_numbers(v, [*keys, str(k)], subject) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise_numbers(v, [*keys, i], subject) for i, v in enumerate(value)]
    return value


# explaining a msgspec error ----------------------------------------------------------


def explain(err: msgspec.ValidationError, data: Any, kind: Any, subject: Subject) -> InvalidRequest:
    """msgspec's error, reworded from the type at its path (read lazily: errors only)."""
    from msgspec import inspect as mi

    located = _LOCATED.match(str(err))
    what = located["what"] if located else str(err)
    keys: list[PathKey] = [
        name if name else int(index)
        for name, index in _PATH_PART.findall(located["path"] or "" if located else "")
    ]
    root = mi.type_info(kind)
    if missing := _MISSING.match(what):
        field = [*keys, missing["name"]]
        return subject.fail(dotted(field), "is required" + _example(root, data, field))
    if unknown := _UNKNOWN.match(what):
        return _unknown_field(root, data, keys, unknown["name"], subject)
    expected = _type_at(root, data, keys)
    value = _value_at(data, keys)
    described = None if expected is None else _describe(expected, value, subject, dotted(keys))
    if not keys and isinstance(expected, mi.StructType):
        return InvalidRequest(f"the {subject.name} {described or what}")
    return subject.fail(dotted(keys), described or what)


def _value_at(data: Any, keys: list[PathKey]) -> Any:
    for key in keys:
        indexable = isinstance(data, list) if isinstance(key, int) else isinstance(data, Mapping)
        if not indexable or key not in (range(len(data)) if isinstance(key, int) else data):
            return _ABSENT
        data = data[key]
    return data


def _unwrap(info: Any) -> Any:
    from msgspec import inspect as mi

    while isinstance(info, mi.Metadata):
        info = info.type
    return info


def _variants(info: Any) -> list[msgspec_inspect.StructType]:
    """The tagged structs of a union (or the struct itself), None left out."""
    from msgspec import inspect as mi

    info = _unwrap(info)
    members = info.types if isinstance(info, mi.UnionType) else (info,)
    return [m for m in map(_unwrap, members) if isinstance(m, mi.StructType)]


def _struct_for(info: Any, data: Any) -> msgspec_inspect.StructType | None:
    """The struct ``data`` is decoded as: the union member its tag names, if tagged."""
    variants = _variants(info)
    if len(variants) == 1:
        return variants[0]
    for variant in variants:
        if isinstance(data, Mapping) and data.get(variant.tag_field or "") == variant.tag:
            return variant
    return None


def _type_at(info: Any, data: Any, keys: list[PathKey]) -> Any:
    from msgspec import inspect as mi

    for depth, key in enumerate(keys):
        info = _unwrap(info)
        here = _value_at(data, keys[:depth])
        if isinstance(key, int):
            members = info.types if isinstance(info, mi.UnionType) else (info,)
            arrays = [
                _unwrap(m)
                for m in members
                if isinstance(_unwrap(m), mi.ListType | mi.VarTupleType | mi.SetType)
            ]
            if not arrays:
                return None
            info = arrays[0].item_type
            continue
        variants = _variants(info)
        tag_fields = {v.tag_field for v in variants if v.tag_field}
        if key in tag_fields:
            info = mi.LiteralType(values=tuple(str(v.tag) for v in variants))
            continue
        struct = _struct_for(info, here)
        if struct is None:
            return None
        by_name = {f.encode_name: f for f in struct.fields}
        if key not in by_name:
            return None
        info = by_name[key].type
    return _unwrap(info)


def _example(root: Any, data: Any, field: list[PathKey]) -> str:
    from msgspec import inspect as mi

    info = _type_at(root, data, field[:-1])
    tags = [str(v.tag) for v in _variants(info) if v.tag_field == field[-1]] if info else []
    if tags:
        return f", one of {', '.join(tags)}"
    struct = None if info is None else _struct_for(info, _value_at(data, field[:-1]))
    for candidate in struct.fields if struct is not None else ():
        meta = candidate.type
        if candidate.encode_name == field[-1] and isinstance(meta, mi.Metadata):
            examples = (meta.extra_json_schema or {}).get("examples")
            if examples:
                return f", e.g. {examples[0]!r}"
    return ""


def _unknown_field(
    root: Any, data: Any, keys: list[PathKey], name: str, subject: Subject
) -> InvalidRequest:
    here = dotted(keys)
    info = _type_at(root, data, keys)
    value = _value_at(data, keys)
    struct = None if info is None else _struct_for(info, value)
    allowed = sorted(f.encode_name for f in struct.fields) if struct is not None else []
    if struct is not None and struct.tag_field:
        allowed = sorted({*allowed, struct.tag_field})
        owners = [
            v for v in _variants(info) if name in {f.encode_name for f in v.fields} and v != struct
        ]
        if owners:
            noun = subject.noun(here)
            names = " or ".join(str(v.tag) for v in owners)
            return subject.fail(
                f"{here}.{name}", f"only applies to the {names} {noun}, not {struct.tag}"
            )
    where = f"the {subject.name}" if not keys else repr(here)
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return InvalidRequest(
        f"unknown field(s) {name!r} in {where}{hint}; allowed: {', '.join(allowed)}"
    )


def _bounds(info: Any) -> str:
    parts = [
        f"{sign} {getattr(info, attr)}"
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
        if getattr(info, attr, None) is not None
    ]
    return " and ".join(parts)


def _describe(info: Any, value: Any, subject: Subject, path: str) -> str | None:
    """What was wrong with ``value`` and what is accepted, or None to keep msgspec's words."""
    from msgspec import inspect as mi

    info = _unwrap(info)
    if isinstance(info, mi.UnionType):
        members = [_unwrap(m) for m in info.types if not isinstance(_unwrap(m), mi.NoneType)]
        fitting = [m for m in members if _fits_type(m, value)]
        if len(fitting) == 1 or len(members) == 1:
            return _describe((fitting or members)[0], value, subject, path)
        if len(_variants(info)) == len(members):  # tagged structs: the value is no object
            return f"must be a JSON object, got {type(value).__name__}"
        return None
    if isinstance(info, mi.LiteralType):
        choices = ", ".join(str(v) for v in info.values)
        return f"unknown {subject.noun(path)} {value!r}; use one of {choices}"
    if isinstance(info, mi.BoolType):
        return f"must be true or false, got {value!r}"
    if isinstance(info, mi.IntType):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {value!r}"
        return f"must be {_bounds(info)}, got {value!r}"
    if isinstance(info, mi.FloatType):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {value!r}"
        return f"must be {_bounds(info)}, got {value!r}"
    if isinstance(info, mi.StrType):
        if not isinstance(value, str) or (info.min_length and len(value) < info.min_length):
            return f"must be a {'non-empty ' if info.min_length else ''}string, got {value!r}"
        if info.pattern:
            return f"must be a string matching {info.pattern}, got {value!r}"
        return None
    if isinstance(info, mi.ListType | mi.VarTupleType):
        items = _plural(_unwrap(info.item_type))
        if not isinstance(value, list):
            return f"must be a list of {items}, got {value!r}"
        return f"must be a non-empty list of {items}, got {value!r}"
    if isinstance(info, mi.StructType | mi.DictType):
        return f"must be a JSON object, got {type(value).__name__}"
    return None


def _plural(info: Any) -> str:
    from msgspec import inspect as mi

    names: dict[type, str] = {
        mi.IntType: "integers",
        mi.FloatType: "numbers",
        mi.StrType: "strings",
    }
    return names.get(type(info), "values")


def _fits_type(info: Any, value: Any) -> bool:
    from msgspec import inspect as mi

    if isinstance(info, mi.IntType):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(info, mi.FloatType):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(info, mi.StrType | mi.LiteralType):
        return isinstance(value, str)
    if isinstance(info, mi.ListType | mi.VarTupleType):
        return isinstance(value, list)
    if isinstance(info, mi.StructType | mi.DictType):
        return isinstance(value, Mapping)
    return False
