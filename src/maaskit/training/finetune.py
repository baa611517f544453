"""Initial weights: fresh, or a base model's for fine-tuning on new data.

A base model must share the architecture (kind, hidden sizes, activation, task, input
features); only the output layer may differ, and it is then initialised afresh for the
new classes. Reusing weights across different shapes would "work" and mean nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from maaskit.errors import InvalidRequest
from maaskit.training.network import Architecture, init_params
from maaskit.training.split import INIT_STREAM
from maaskit.training.weights import ModelWeights

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class InitialWeights:
    params: FloatArray
    new_output_layer: bool  # True when fine-tuning replaced the base model's output layer


def fresh_params(architecture: Architecture, seed: int) -> FloatArray:
    return init_params(architecture, np.random.default_rng([seed, INIT_STREAM]))


def _describe(architecture: Architecture) -> str:
    hidden = list(architecture.hidden)
    return (
        f"{architecture.kind} {architecture.task}, hidden {hidden}, "
        f"activation {architecture.activation}, {architecture.n_features} features"
    )


def from_base(
    architecture: Architecture,
    base: ModelWeights,
    *,
    base_label: str,
    feature_names: Sequence[str],
    classes: npt.NDArray[Any] | None,
    freeze: Sequence[int],
    seed: int,
) -> InitialWeights:
    """``base``'s weights for ``architecture``, with a new output layer if classes differ."""
    theirs = base.architecture
    same_body = (
        theirs.kind == architecture.kind
        and theirs.hidden == architecture.hidden
        and theirs.task == architecture.task
        and theirs.n_features == architecture.n_features
        and (not architecture.hidden or theirs.activation == architecture.activation)
    )
    if not same_body:
        raise InvalidRequest(
            f"base model {base_label} is a {_describe(theirs)}; this spec asks for a "
            f"{_describe(architecture)}: fine-tuning needs the same architecture"
        )
    if tuple(base.feature_names) != tuple(feature_names):
        raise InvalidRequest(
            f"base model {base_label} was trained on features {list(base.feature_names)}; "
            f"this dataset has {list(feature_names)}: fine-tuning needs the same features"
        )
    params = fresh_params(architecture, seed)
    output_layer = architecture.n_layers - 1
    same_outputs = theirs.n_outputs == architecture.n_outputs and (
        classes is None or (base.classes is not None and np.array_equal(base.classes, classes))
    )
    reused = range(architecture.n_layers) if same_outputs else range(output_layer)
    for layer in reused:
        for ours, theirs_slice in zip(
            architecture.layer_slices(layer), theirs.layer_slices(layer), strict=True
        ):
            params[ours] = base.params[theirs_slice]
    if not same_outputs and output_layer in freeze:
        raise InvalidRequest(
            f"cannot freeze layer {output_layer}: the classes differ from base model "
            f"{base_label}'s, so the output layer is new and must be trained"
        )
    return InitialWeights(params=params, new_output_layer=not same_outputs)
