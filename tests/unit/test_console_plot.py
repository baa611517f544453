"""What the command line prints, and the PNG curves."""

from __future__ import annotations

import io
import struct
import zlib

import pytest

from maaskit.cli.console import ProgressBar, WaitingLine, batch_summary, progress_line, table
from maaskit.cli.plot import (
    nice_ticks,
    render_curves,
    series_from_metrics,
    tick_format,
    value_range,
)
from maaskit.sdk.client import TrainingStatus


def test_table_aligns_columns() -> None:
    assert table([("digits", "1,2"), ("x", "1")], ("NAME", "VERSIONS")) == (
        "NAME    VERSIONS\ndigits  1,2\nx       1"
    )


def test_progress_line_shows_epoch_loss_and_validation_metric() -> None:
    status = TrainingStatus(
        "run",
        "RUNNING",
        metrics=[{"epoch": 5, "loss": 0.51234, "val_accuracy": 0.9, "learning_rate": 0.01}],
    )
    line = progress_line(status, total_epochs=10, width=10)
    assert line == "[#####-----]  epoch 5/10  loss 0.5123  val_accuracy 0.9000  RUNNING"


def test_progress_bar_prints_only_changes_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = ProgressBar(2, stream)
    running = TrainingStatus("r", "RUNNING", metrics=[{"epoch": 1, "loss": 1.0}])
    bar(running)
    bar(running)
    bar(TrainingStatus("r", "SUCCEEDED", metrics=[{"epoch": 2, "loss": 0.5}]))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[-1].endswith("SUCCEEDED")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    _length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_curves_render_as_a_valid_png_with_two_panels() -> None:
    rows = [
        {"epoch": e, "loss": 1 / e, "val_loss": 1.1 / e, "val_accuracy": 1 - 1 / e}
        for e in range(1, 8)
    ]

    data = render_curves(rows, title="run", use_matplotlib=False)

    width, height = _png_size(data)
    assert (width, height) == (1120, 420)
    idat = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[idat - 4 : idat])
    raw = zlib.decompress(data[idat + 4 : idat + 4 + length])
    assert len(raw) == height * (1 + 3 * width)
    assert raw.count(b"\x1f\x77\xb4") > 50  # the first series' colour is drawn


def test_series_split_losses_from_metrics_and_skip_bookkeeping() -> None:
    x_label, losses, others = series_from_metrics(
        [{"epoch": 1, "loss": 2.0, "accuracy": 0.5, "learning_rate": 0.1, "elapsed_s": 3}]
    )
    assert x_label == "epoch"
    assert [s.name for s in losses] == ["loss"]
    assert [s.name for s in others] == ["accuracy"]


def test_nothing_to_plot_is_an_error() -> None:
    with pytest.raises(ValueError, match="no numeric metrics"):
        render_curves([{"epoch": 1, "note": "starting"}])


def test_matplotlib_draws_the_curves_when_installed() -> None:
    pytest.importorskip("matplotlib")
    rows = [{"epoch": e, "loss": 1 / e, "val_accuracy": 1 - 1 / (e + 1)} for e in range(1, 6)]

    width, height = _png_size(render_curves(rows, title="run", use_matplotlib=True))

    assert (width, height) == (1200, 420)


def test_ticks_are_round_and_share_one_format() -> None:
    assert nice_ticks(0, 30, 7) == [0, 5, 10, 15, 20, 25, 30]
    assert nice_ticks(0.12, 0.97, 6) == [0.2, 0.4, 0.6, 0.8]
    text = tick_format([0.2, 0.4, 0.6, 0.8])
    assert [text(t) for t in (0.2, 0.4, 0.6)] == ["0.2", "0.4", "0.6"]
    whole = tick_format([0, 5, 10])
    assert [whole(t) for t in (0, 5, 10)] == ["0", "5", "10"]


def test_fraction_axes_stop_at_one_and_losses_do_not() -> None:
    from maaskit.cli.plot import Series

    accuracy = Series("val_accuracy", (1.0, 2.0), (0.5, 1.0))
    loss = Series("loss", (1.0, 2.0), (0.5, 2.0))
    assert value_range([accuracy])[1] == 1.0
    assert value_range([loss])[1] > 2.0


def test_waiting_line_prints_once_off_a_terminal() -> None:
    stream = io.StringIO()
    waiting = WaitingLine("waiting for the report of rows.jsonl", stream)
    waiting(0.5)
    waiting(1.5)
    waiting.close()
    assert stream.getvalue() == "waiting for the report of rows.jsonl ...\n"


def test_batch_summary_is_one_line_with_counts_and_where() -> None:
    report = {"status": "COMPLETED_WITH_ERRORS", "rows_in": 3, "rows_out": 1, "rows_failed": 2,
              "output": {"key": "batch/out/m/x.jsonl", "etag": "e"}}  # fmt: skip
    line = batch_summary(report, "s3://b/batch/out/m/x.jsonl")
    assert line == "COMPLETED_WITH_ERRORS: rows 3 in, 1 out, 2 failed -> s3://b/batch/out/m/x.jsonl"
    refused = batch_summary({"status": "FAILED", "rows_in": 0, "output": None}, "s3://b/o")
    assert refused == "FAILED: rows 0 in, 0 out, 0 failed -> no output written"
