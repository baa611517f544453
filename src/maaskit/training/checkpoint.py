"""The training state, and its checkpoint: one ``.npz`` holding everything a resume needs.

Weights, optimizer slots, step counters, the per-shard data cursors, the early-stopping
record and the metric history. The RNG state is (seed, epoch): each epoch's visiting
order is a pure function of them (``split.epoch_order``), so a checkpoint plus the spec
resumes bit for bit, whichever invocation or retry loads it.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from maaskit.errors import CorruptObject

FloatArray = npt.NDArray[np.float64]
FORMAT_VERSION = 1


@dataclass
class TrainingState:
    params: FloatArray
    slots: dict[str, FloatArray]
    cursors: npt.NDArray[np.int64]  # rows consumed this epoch, one per shard
    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer updates so far (synchronous rounds count once per local step)
    rounds: int = 0  # model-averaging rounds so far (data-parallel runs)
    loss_sum: float = 0.0  # sum of batch loss x batch rows, this epoch
    rows_seen: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0
    best_params: FloatArray | None = None
    stale_epochs: int = 0
    done: bool = False
    stop_reason: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)

    def copy(self) -> TrainingState:
        """Every field, with the arrays and the history copied (the rest is immutable)."""
        return replace(
            self,
            params=self.params.copy(),
            slots={name: slot.copy() for name, slot in self.slots.items()},
            cursors=self.cursors.copy(),
            best_params=None if self.best_params is None else self.best_params.copy(),
            history=[dict(record) for record in self.history],
        )

    @property
    def last_metrics(self) -> dict[str, Any]:
        return dict(self.history[-1]) if self.history else {}


_SCALARS = {
    "epoch": np.int64,
    "step": np.int64,
    "rounds": np.int64,
    "loss_sum": np.float64,
    "rows_seen": np.int64,
    "best_loss": np.float64,
    "best_epoch": np.int64,
    "stale_epochs": np.int64,
    "done": np.bool_,
}


def state_to_bytes(state: TrainingState) -> bytes:
    arrays: dict[str, Any] = {
        "format_version": np.int64(FORMAT_VERSION),
        "params": state.params,
        "cursors": state.cursors,
        "stop_reason": np.array(state.stop_reason),
        "history": np.array(json.dumps(state.history)),
    }
    for name, kind in _SCALARS.items():
        arrays[name] = np.array(getattr(state, name), dtype=kind)
    for name, slot in state.slots.items():
        arrays[f"slot.{name}"] = slot
    if state.best_params is not None:
        arrays["best_params"] = state.best_params
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def state_from_bytes(data: bytes) -> TrainingState:
    """The state a checkpoint holds; ``CorruptObject`` (never a half-read state) otherwise."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as err:  # a truncated or foreign file
        raise CorruptObject(f"checkpoint cannot be read: {err}") from None
    try:
        if int(arrays.get("format_version", -1)) != FORMAT_VERSION:
            raise CorruptObject("checkpoint was written by an incompatible version of maaskit")
        return _state(arrays)
    except (KeyError, TypeError, ValueError) as err:
        problem = f"missing {err}" if isinstance(err, KeyError) else str(err)
        raise CorruptObject(f"checkpoint is not a complete training state ({problem})") from None


def _state(arrays: dict[str, Any]) -> TrainingState:
    scalars: dict[str, Any] = {}
    for name, kind in _SCALARS.items():
        value = arrays[name].item()
        scalars[name] = bool(value) if kind is np.bool_ else value
    return TrainingState(
        params=np.array(arrays["params"], dtype=np.float64),
        slots={
            name.removeprefix("slot."): np.array(value, dtype=np.float64)
            for name, value in arrays.items()
            if name.startswith("slot.")
        },
        cursors=np.array(arrays["cursors"], dtype=np.int64),
        best_params=(
            np.array(arrays["best_params"], dtype=np.float64) if "best_params" in arrays else None
        ),
        stop_reason=str(arrays["stop_reason"]),
        history=json.loads(str(arrays["history"])),
        **scalars,
    )
