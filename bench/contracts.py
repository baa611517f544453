"""Typed contracts for training: msgspec (ours) against pydantic v2 (the baseline).

- ``training_cold_import``: a fresh interpreter importing what a training function imports
  before its first event (numpy, boto3, the registry), then the spec models, then decoding
  one spec, with the models in msgspec (``maaskit.training.spec``) against the same models
  in pydantic v2 (``bench/_pydantic_spec.py``). Runs alternate, so drift hits both alike;
  a third child with the shared imports alone shows what each library itself adds.
- ``contract_cold_import``: the same children's contract part alone (the library, the
  models, one decode), timed inside the child, which the machine's noise disturbs less.
- ``contract_layer_size``: the installed size of each library and what it pulls in, i.e.
  what it adds to a Lambda layer (pydantic: pydantic-core, annotated-types,
  typing-inspection, typing-extensions).
"""

from __future__ import annotations

import importlib.metadata
import os
import statistics
import sys

import _common

RUNS = 21
SPEC = {
    "model": "digits-mlp",
    "dataset": "s3://bucket/datasets/digits.csv",
    "target": "label",
    "architecture": {"type": "mlp", "hidden": [64, 32]},
    "epochs": 30,
    "batch_size": 64,
    "optimizer": {"type": "adam", "learning_rate": 0.001},
    "lr_schedule": {"type": "cosine"},
    "validation_split": 0.2,
    "seed": 0,
}
_SHARED = "import numpy, boto3\nimport maaskit.registry.store, maaskit.registry.catalog\n"
# Each child also reports, on stderr, the seconds its contract part took in-process: less
# noisy than the whole interpreter's wall time on a shared machine.
_TIMED = (
    "import sys, time\n"
    + _SHARED
    + "started = time.perf_counter()\n{body}"
    + ("print(time.perf_counter() - started, file=sys.stderr)\n")
)
_OURS = _TIMED.format(
    body="import msgspec\nfrom maaskit.training.spec import SpecDocument\n"
    f"msgspec.convert({SPEC!r}, SpecDocument, strict=True)\n"
)
_BASELINE = _TIMED.format(body=f"from bench._pydantic_spec import parse\nparse({SPEC!r})\n")
_LIBRARIES = {
    "msgspec": ("msgspec",),
    "pydantic": ("pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions"),
}  # fmt: skip


def _spread(name: str, samples: list[float]) -> str:
    return (
        f"  {name:<9} median {statistics.median(samples) * 1000:7.1f} ms  "
        f"min {min(samples) * 1000:7.1f}  max {max(samples) * 1000:7.1f}  "
        f"p90 {_common.percentile(samples, 90) * 1000:7.1f}"
    )


def cold_import() -> list[str]:
    env = {
        **os.environ,
        **_common.FAKE_AWS,
        "PYTHONPATH": os.pathsep.join([str(_common.ROOT / "src"), str(_common.ROOT)]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for code in (_SHARED, _OURS, _BASELINE):  # warm the page cache and the .pyc files alike
        _common.timed_child(code, {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"})
    shared: list[float] = []
    ours: list[float] = []
    baseline: list[float] = []
    inside: dict[str, list[float]] = {"ours": [], "baseline": []}
    for run in range(RUNS):
        order = [(_OURS, ours, "ours"), (_BASELINE, baseline, "baseline"), (_SHARED, shared, "")]
        for code, samples, side in order if run % 2 == 0 else order[::-1]:
            wall, stderr = _common.timed_child(code, env)
            samples.append(wall)
            if side:
                inside[side].append(float(stderr.strip().splitlines()[-1]))
    print(f"training cold import, {RUNS} fresh interpreters each, alternated:")
    print(_spread("msgspec", ours))
    print(_spread("pydantic", baseline))
    print(_spread("shared", shared))
    base = statistics.median(shared)
    print(
        f"  the library and models add: msgspec {(statistics.median(ours) - base) * 1000:.1f} ms, "
        f"pydantic {(statistics.median(baseline) - base) * 1000:.1f} ms"
    )
    print("  the contract part alone, timed inside each child:")
    print(_spread("msgspec", inside["ours"]))
    print(_spread("pydantic", inside["baseline"]))
    return [
        _common.bench_line(
            "training_cold_import", statistics.median(ours), statistics.median(baseline), "s"
        ),
        _common.bench_line(
            "contract_cold_import",
            statistics.median(inside["ours"]),
            statistics.median(inside["baseline"]),
            "s",
        ),
    ]


def _installed_kb(distributions: tuple[str, ...]) -> float:
    total = 0
    for name in distributions:
        dist = importlib.metadata.distribution(name)
        for file in dist.files or ():
            path = file.locate()
            if (
                os.path.isfile(path)
                and "__pycache__" not in str(file)
                and ".dist-info" not in str(file)
            ):
                total += os.path.getsize(path)
    return total / 1024


def layer_size() -> list[str]:
    sizes = {library: _installed_kb(dists) for library, dists in _LIBRARIES.items()}
    for library, dists in _LIBRARIES.items():
        print(f"layer size of {library} ({', '.join(dists)}): {sizes[library]:.0f} kB")
    return [_common.bench_line("contract_layer_size", sizes["msgspec"], sizes["pydantic"], "kB")]


def main() -> None:
    print(f"python {sys.version.split()[0]}; baseline: pydantic v2 models of the same spec")
    lines = cold_import() + layer_size()
    print()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
