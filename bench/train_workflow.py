"""What the workflow costs per optimizer step, against the training core alone.

Ours: the whole local workflow (moto's Step Functions interpreter running the real
definition, the handlers in process, S3 on moto) from start_execution to SUCCEEDED:
Prepare, TrainSteps, Evaluate, Export (ONNX and the parity check), Register, Promote,
divided by the number of optimizer steps. Baseline: the same training in the core, in
memory, divided by the same number of steps. Same data (digits), same spec, same process;
medians over the repeats, after one warm-up of each (handler cold starts, imports).

The default lets each TrainSteps invocation run until its time budget, as on AWS;
``--steps-per-invocation N`` checkpoints every N steps instead, to see what checkpoints cost.

    python bench/train_workflow.py [--repeats 3] [--epochs 30] [--steps-per-invocation 0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import _common

from tests.support.training_stack import BUCKET, TrainingStack, training_stack

EXECUTION_POLL_S = 0.005


def digits_csv() -> bytes:
    from tests.integration.training.data import digits, to_csv

    return to_csv(digits())


def spec(epochs: int) -> dict[str, Any]:
    from tests.integration.training.data import digits_spec

    return digits_spec(epochs=epochs)


def core_seconds(csv: bytes, request: dict[str, Any]) -> tuple[float, int]:
    from maaskit.training.datasets import read_table
    from maaskit.training.finetune import fresh_params
    from maaskit.training.preparation import architecture_for, prepare
    from maaskit.training.spec import parse_spec
    from maaskit.training.trainer import Trainer

    parsed = parse_spec(request)
    data = prepare(read_table(csv, "csv", target=parsed.target), parsed)
    architecture = architecture_for(data.spec, len(data.feature_names), data.n_outputs)
    trainer = Trainer(architecture, data.spec, data.validation, [data.train.rows])
    state = trainer.start(fresh_params(architecture, data.spec.seed))
    started = time.perf_counter()
    trainer.run(state, data.train)
    return time.perf_counter() - started, state.step


def workflow_seconds(
    stack: TrainingStack, request: dict[str, Any], run_id: str
) -> tuple[float, int]:
    started = time.perf_counter()
    arn = stack.start(request, run_id)
    while (described := stack.sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        time.sleep(EXECUTION_POLL_S)
    elapsed = time.perf_counter() - started
    output = stack.output(described)
    return elapsed, int(output["step"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--steps-per-invocation", type=int, default=0)
    args = parser.parse_args()
    os.environ.update(_common.FAKE_AWS)
    os.environ.update(
        {
            "MAASKIT_BUCKET": BUCKET,
            "MAASKIT_TRAINING_MARGIN_MS": "1000",
            "MAASKIT_TRAINING_STEPS_PER_INVOCATION": str(args.steps_per_invocation),
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    csv, request = digits_csv(), spec(args.epochs)
    core: list[float] = []
    flow: list[float] = []
    with training_stack() as stack:
        stack.store.put("datasets/digits.csv", csv)
        for repeat in range(args.repeats + 1):
            seconds, steps = core_seconds(csv, request)
            wall, flow_steps = workflow_seconds(stack, request, f"bench-{repeat}")
            assert flow_steps == steps, (flow_steps, steps)
            if repeat:  # the first is the warm-up
                core.append(seconds * 1000 / steps)
                flow.append(wall * 1000 / steps)
        invocations = len(stack.calls("TrainStepsFunction")) // (args.repeats + 1)
    ours, baseline = statistics.median(flow), statistics.median(core)
    print(
        f"digits, {args.epochs} epochs: {steps} steps, {invocations} TrainSteps invocation(s) "
        f"per run, {args.repeats} repeats; per step: workflow {ours:.3f} ms, core {baseline:.4f} ms"
    )
    print(_common.bench_line("workflow_overhead_per_step", ours, baseline, "ms"))


if __name__ == "__main__":
    main()
