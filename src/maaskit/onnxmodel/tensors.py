"""JSON values to numpy arrays, checked against a model's signature before anything runs.

Every check here exists to turn what onnxruntime would report as an opaque failure (or,
worse, silently accept) into a message that names the input and says what to send.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from maaskit.errors import InvalidRequest
from maaskit.onnxmodel.signature import Dim, Signature, TensorSpec

_NUMERIC_KINDS = frozenset("iuf")


def _describe_shape(shape: Sequence[Dim]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _kind_name(kind: str) -> str:
    return {
        "b": "booleans",
        "i": "integers",
        "u": "integers",
        "f": "floating-point numbers",
        "U": "strings",
        "S": "strings",
        "O": "mixed values",
    }.get(kind, f"values of kind {kind!r}")


def to_array(value: Any, spec: TensorSpec) -> np.ndarray:
    """Convert one input value to ``spec``'s element type, refusing lossy or odd conversions."""
    target = spec.dtype
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value, dtype=object if spec.datatype == "BYTES" else None)
        except ValueError:
            raise InvalidRequest(
                f"input {spec.name!r} is a ragged nested list: every row must have the same "
                f"length (expected shape {_describe_shape(spec.shape)})"
            ) from None
    kind = array.dtype.kind
    if kind == "f" and target.kind == "f" and _within_float_range(array, target):
        return array.astype(target, copy=False)  # finite and representable: cannot overflow
    if target.kind in "iu" and kind == "f" and array.size and not isinstance(value, np.ndarray):
        array = _exact_integers(value, array, spec)
        kind = array.dtype.kind
    if spec.datatype == "BYTES":
        if array.size and not all(isinstance(x, str | bytes) for x in array.flat):
            raise InvalidRequest(f"input {spec.name!r} expects strings (BYTES)")
        return array.astype(object, copy=False)
    if spec.datatype == "BOOL":
        if kind != "b" and array.size:  # an empty list parses as float64
            raise InvalidRequest(f"input {spec.name!r} expects booleans; got {_kind_name(kind)}")
        return array.astype(target, copy=False)
    if kind == "O" and array.size:
        raise InvalidRequest(
            f"input {spec.name!r} expects {spec.datatype} numbers; got a mix of lists and "
            "values (ragged) or non-numbers"
        )
    if kind not in _NUMERIC_KINDS and array.size:
        raise InvalidRequest(
            f"input {spec.name!r} expects {spec.datatype} numbers; got {_kind_name(kind)}"
        )
    if (
        target.kind in "iu"
        and kind == "f"
        and not np.all(np.isfinite(array) & (array == np.floor(array)))
    ):
        raise InvalidRequest(
            f"input {spec.name!r} expects {spec.datatype} integers; got fractional numbers"
        )
    if array.dtype == target and kind in "iu":
        return array  # already the model's integer type: nothing to convert or range-check
    if target.kind in "iu" and array.size and kind in "iuf":
        _check_range(array.min(), array.max(), spec)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused just below
        converted = array.astype(target, copy=False)
    if target.kind == "f" and converted.size and not np.isfinite(converted).all():
        raise InvalidRequest(_non_finite(array, spec))
    return converted


_QUICK_CHECK_VALUES = 8192  # at most this many values: one dot product, never threaded
_SQUARED_FLOAT_MAX: dict[np.dtype[Any], float] = {  # float64's own square would be infinite
    np.dtype(t): min(float(np.finfo(t).max) ** 2, float(np.finfo(np.float64).max))
    for t in (np.float16, np.float32)
} | {np.dtype(np.float64): float(np.finfo(np.float64).max)}


def _within_float_range(array: np.ndarray, target: np.dtype[Any]) -> bool:
    """Whether a small array is all finite and within ``target``'s range, so that casting it
    cannot overflow; ``False`` only means "check exactly".

    A sum of squares at most the square of ``target``'s largest value bounds every value by
    it (NaN fails the comparison, infinity exceeds it; rounding is far below the cast's
    own). One ``np.vdot`` costs an online request less than a microsecond, where the exact
    path's ``np.errstate``, cast and finiteness pass cost several.
    """
    bound = _SQUARED_FLOAT_MAX.get(target)
    if bound is None or not 0 < array.size <= _QUICK_CHECK_VALUES:
        return False
    return float(np.vdot(array, array)) <= bound


def all_finite(array: np.ndarray) -> bool:
    """Whether every value of a float array is finite (no NaN, no infinity).

    A finite sum of squares proves it in one pass for a small array; a sum that is not
    finite (a NaN, an infinity, or only an overflow of large values) and a large array get
    the exact check.
    """
    if array.size <= _QUICK_CHECK_VALUES and math.isfinite(np.vdot(array, array)):
        return True
    return bool(np.isfinite(array).all())


def _non_finite(array: np.ndarray, spec: TensorSpec) -> str:
    """Why a float input is refused: NaN/infinity given, or a number too big for its type."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return (
            f"input {spec.name!r} holds NaN or infinity: send finite numbers (a missing value "
            "must be encoded the way the model was trained, not as NaN)"
        )
    limit = float(np.finfo(spec.dtype).max)
    return (
        f"input {spec.name!r} has values outside the {spec.datatype} range (±{limit:.4g}): "
        "they would become infinity"
    )


def _exact_integers(value: Any, parsed: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Integers beyond float64's 53 bits, which numpy turns into floats when they share a
    list with smaller ones (``[2**63 + 1, 0]``): convert them exactly, not rounded."""
    if float(np.abs(parsed).max()) < 2**53:
        return parsed
    exact = np.asarray(value, dtype=object)
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in exact.flat):
        return parsed  # fractional numbers: refused below
    _check_range(min(exact.flat), max(exact.flat), spec)
    return exact.astype(spec.dtype)


def _check_range(low: Any, high: Any, spec: TensorSpec) -> None:
    info = np.iinfo(spec.dtype)
    if low < info.min or high > info.max:
        raise InvalidRequest(
            f"input {spec.name!r} has values outside the {spec.datatype} range "
            f"[{info.min}, {info.max}]"
        )


def check_shape(array: np.ndarray, spec: TensorSpec) -> None:
    expected = spec.shape
    if array.ndim != len(expected):
        raise InvalidRequest(
            f"input {spec.name!r} must have rank {len(expected)} (shape "
            f"{_describe_shape(expected)}); got shape {list(array.shape)}"
        )
    for axis, (want, got) in enumerate(zip(expected, array.shape, strict=True)):
        if isinstance(want, int) and want >= 0 and want != got:
            raise InvalidRequest(
                f"input {spec.name!r} dimension {axis} must be {want} (shape "
                f"{_describe_shape(expected)}); got shape {list(array.shape)}"
            )


def _check_symbolic_dims(arrays: Mapping[str, np.ndarray], signature: Signature) -> None:
    """Inputs that share a named dimension (``batch``, ``sequence``) must agree on its size."""
    seen: dict[str, tuple[str, int]] = {}
    for spec in signature.inputs:
        array = arrays[spec.name]
        for want, got in zip(spec.shape, array.shape, strict=True):
            if not isinstance(want, str):
                continue
            if want in seen and seen[want][1] != got:
                other, size = seen[want]
                raise InvalidRequest(
                    f"inputs {other!r} and {spec.name!r} must agree on dimension {want!r}: "
                    f"got {size} and {got}"
                )
            seen.setdefault(want, (spec.name, got))


def check_names(signature: Signature, given: Sequence[str]) -> None:
    expected = [spec.name for spec in signature.inputs]
    unknown = [name for name in given if name not in expected]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, expected, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidRequest(
            f"unknown input {name!r}{hint}; the model takes: {', '.join(map(repr, expected))}"
        )
    missing = [name for name in expected if name not in given]
    if missing:
        raise InvalidRequest(
            f"missing input(s) {', '.join(map(repr, missing))}; the model takes: "
            f"{', '.join(map(repr, expected))}"
        )


def check_together(signature: Signature, arrays: Mapping[str, np.ndarray]) -> None:
    """What no single input shows: every name present, shared named dims agreeing."""
    check_names(signature, list(arrays))
    if len(arrays) > 1:
        _check_symbolic_dims(arrays, signature)


def prepare_inputs(signature: Signature, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Named JSON values (or arrays) to arrays ready for ``session.run``."""
    if len(signature.inputs) == 1 and len(values) == 1:  # most models: nothing to cross-check
        spec = signature.inputs[0]
        if spec.name in values:
            array = to_array(values[spec.name], spec)
            check_shape(array, spec)
            return {spec.name: array}
    check_names(signature, list(values))
    arrays: dict[str, np.ndarray] = {}
    for spec in signature.inputs:
        array = to_array(values[spec.name], spec)
        check_shape(array, spec)
        arrays[spec.name] = array
    if len(arrays) > 1:  # the names were checked above
        _check_symbolic_dims(arrays, signature)
    return arrays
