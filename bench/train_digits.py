"""Our numpy training core against scikit-learn's MLPClassifier on the digits dataset.

Same data, same split (our stratified 80/20 split by seed), same standardisation (fitted
on the training part), same settings: one hidden layer of 64 ReLU units, Adam with
learning rate 0.001, batches of 64, 30 epochs, no L2 penalty, no early stopping. Each
repeat uses a new seed for both sides; wall times are medians, accuracies means over the
repeats, measured in this one process. The held-out part is only scored, never used to
decide anything, so it serves as the test set.

    python bench/train_digits.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import _common
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from maaskit.training.datasets import Table
from maaskit.training.finetune import fresh_params
from maaskit.training.preparation import PreparedData, architecture_for, prepare
from maaskit.training.spec import parse_spec
from maaskit.training.trainer import Trainer

EPOCHS = 30
SPEC = {
    "model": "digits-mlp",
    "dataset": "datasets/digits.csv",
    "target": "label",
    "architecture": {"type": "mlp", "hidden": [64]},
    "epochs": EPOCHS,
    "batch_size": 64,
    "optimizer": {"type": "adam", "learning_rate": 0.001},
    "validation_split": 0.2,
}


def digits_table() -> Table:
    digits = load_digits()
    names = tuple(f"pixel{i}" for i in range(digits.data.shape[1]))
    return Table(digits.data.astype(np.float64), digits.target.astype(np.float64), names)


def train_ours(data: PreparedData, seed: int) -> float:
    architecture = architecture_for(data.spec, data.train.x.shape[1], data.n_outputs)
    trainer = Trainer(architecture, data.spec, data.validation, [data.train.rows])
    state = trainer.start(fresh_params(architecture, seed))
    trainer.run(state, data.train)
    assert state.epoch == EPOCHS, state.stop_reason
    return trainer.evaluate(state.params)["accuracy"]


def train_sklearn(data: PreparedData, seed: int) -> float:
    model = MLPClassifier(
        hidden_layer_sizes=(64,),
        activation="relu",
        solver="adam",
        alpha=0.0,
        batch_size=64,
        learning_rate_init=0.001,
        max_iter=EPOCHS,
        shuffle=True,
        n_iter_no_change=EPOCHS + 1,  # never stop before the last epoch
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # it ran all epochs, as asked
        model.fit(data.train.x, data.train.y)
    assert model.n_iter_ == EPOCHS
    return float(model.score(data.validation.x, data.validation.y))


def timed(
    run: Callable[[PreparedData, int], float], data: PreparedData, seed: int
) -> tuple[float, float]:
    started = time.perf_counter()
    accuracy = run(data, seed)
    return time.perf_counter() - started, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    table = digits_table()
    ours_times: list[float] = []
    ours_acc: list[float] = []
    base_times: list[float] = []
    base_acc: list[float] = []
    for seed in range(args.repeats + 1):
        data = prepare(table, parse_spec({**SPEC, "seed": seed}))
        # alternate who goes first, so neither always runs on a warmer cache
        order = [(train_ours, ours_times, ours_acc), (train_sklearn, base_times, base_acc)]
        for run, times, accuracies in order if seed % 2 else order[::-1]:
            seconds, accuracy = timed(run, data, seed)
            if seed > 0:  # seed 0 is the warm-up
                times.append(seconds)
                accuracies.append(accuracy)
    ours_s, base_s = statistics.median(ours_times), statistics.median(base_times)
    ours_a, base_a = statistics.fmean(ours_acc), statistics.fmean(base_acc)
    print(f"digits: {table.rows} rows, {args.repeats} repeats, {EPOCHS} epochs, MLP(64), Adam")
    for seed, (a, b) in enumerate(zip(ours_acc, base_acc, strict=True), start=1):
        print(f"  seed {seed}: accuracy ours={a:.4f} sklearn={b:.4f}")
    print(_common.bench_line("train_digits_mlp", ours_s, base_s, "s"))
    print(_common.bench_line("train_digits_accuracy", ours_a, base_a, "accuracy"))


if __name__ == "__main__":
    main()
