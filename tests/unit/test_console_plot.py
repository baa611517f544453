"""What the command line prints, and the PNG curves."""

from __future__ import annotations

import io
import struct
import zlib

import pytest

from maaskit.client import TrainingStatus
from maaskit.console import ProgressBar, progress_line, table
from maaskit.plot import render_curves, series_from_metrics


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

    data = render_curves(rows, title="run")

    width, height = _png_size(data)
    assert (width, height) == (1080, 400)
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
