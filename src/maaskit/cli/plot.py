"""Training curves as a PNG: drawn by matplotlib when the ``plot`` extra is installed, else
by a small raster writer here (lines and a 3x5 font).

``maaskit train plot`` should work wherever the SDK does, and matplotlib is a large
dependency for two line charts, so it stays optional. Loss curves go in the left panel, the other metrics
(accuracy, validation scores) in the right one, against the epoch (or the row number).
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Color = tuple[int, int, int]

WHITE: Color = (255, 255, 255)
BLACK: Color = (30, 30, 30)
GREY: Color = (200, 200, 200)
PALETTE: tuple[Color, ...] = (
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
)
X_KEYS = ("epoch", "step")
NOT_PLOTTED = frozenset(
    {"epoch", "step", "steps", "time", "elapsed", "elapsed_s", "seconds", "timestamp", "lr"}
    | {"learning_rate", "samples", "batch", "batches", "worker", "shard"}
)

_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001010010010", "8": "111101111101111",
    "9": "111101111001111", "A": "010101111101101", "B": "110101110101110",
    "C": "011100100100011", "D": "110101101101110", "E": "111100110100111",
    "F": "111100110100100", "G": "011100101101011", "H": "101101111101101",
    "I": "111010010010111", "J": "001001001101010", "K": "101101110101101",
    "L": "100100100100111", "M": "101111111101101", "N": "110101101101101",
    "O": "010101101101010", "P": "110101110100100", "Q": "010101101110011",
    "R": "110101110101101", "S": "011100010001110", "T": "111010010010010",
    "U": "101101101101111", "V": "101101101101010", "W": "101101111111101",
    "X": "101101010101101", "Y": "101101010010010", "Z": "111001010100111",
    ".": "000000000000010", "-": "000000111000000", "_": "000000000000111",
    ":": "000010000010000", "/": "001001010100100", "(": "010100100100010",
    ")": "010001001001010", "%": "101001010100101", "+": "000010111010000",
    "=": "000111000111000", " ": "000000000000000",
}  # fmt: skip


class Canvas:
    """An RGB raster with the few drawing operations a line chart needs."""

    def __init__(self, width: int, height: int, background: Color = WHITE) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def dot(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            offset = 3 * (y * self.width + x)
            self.pixels[offset : offset + 3] = bytes(color)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        for y in range(max(0, y0), min(self.height, y1 + 1)):
            for x in range(max(0, x0), min(self.width, x1 + 1)):
                self.dot(x, y, color)

    def line(self, start: tuple[float, float], end: tuple[float, float], color: Color) -> None:
        """A two-pixel-wide line (Bresenham, thickened downwards and rightwards)."""
        x0, y0 = round(start[0]), round(start[1])
        x1, y1 = round(end[0]), round(end[1])
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        error = dx + dy
        while True:
            self.rect(x0, y0, x0 + 1, y0 + 1, color)
            if x0 == x1 and y0 == y1:
                return
            doubled = 2 * error
            if doubled >= dy:
                error += dy
                x0 += sx
            if doubled <= dx:
                error += dx
                y0 += sy

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> int:
        """Draw ``text`` (upper-cased) with its top-left at (x, y); return its width."""
        cursor = x
        for char in text.upper():
            glyph = _GLYPHS.get(char, _GLYPHS[" "] if char == " " else "111101101101111")
            for index, bit in enumerate(glyph):
                if bit == "1":
                    gx, gy = cursor + (index % 3) * scale, y + (index // 3) * scale
                    self.rect(gx, gy, gx + scale - 1, gy + scale - 1, color)
            cursor += 4 * scale
        return cursor - x

    def png(self) -> bytes:
        rows = b"".join(
            b"\x00" + bytes(self.pixels[3 * y * self.width : 3 * (y + 1) * self.width])
            for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            crc = zlib.crc32(kind + data) & 0xFFFFFFFF
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b"")
        )


@dataclass(frozen=True)
class Series:
    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def series_from_metrics(
    rows: Sequence[Mapping[str, Any]],
) -> tuple[str, list[Series], list[Series]]:
    """(x label, loss series, other metric series) from ``metrics.jsonl`` rows."""
    x_key = next((key for key in X_KEYS if any(key in row for row in rows)), None)
    names: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in NOT_PLOTTED and key not in names and _number(value) is not None:
                names.append(key)
    found: list[Series] = []
    for name in names:
        points = []
        for index, row in enumerate(rows):
            y = _number(row.get(name))
            x = _number(row.get(x_key)) if x_key else float(index + 1)
            if y is not None and x is not None:
                points.append((x, y))
        if points:
            found.append(Series(name, tuple(p[0] for p in points), tuple(p[1] for p in points)))
    losses = [s for s in found if "loss" in s.name.lower()]
    others = [s for s in found if "loss" not in s.name.lower()]
    return (x_key or "row"), losses, others


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering [low, high]."""
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def tick_format(ticks: Sequence[float]) -> Callable[[float], str]:
    """One format for every tick of an axis: as many decimals as the step needs, no more."""
    step = min((b - a for a, b in itertools.pairwise(ticks)), default=1.0) or 1.0
    largest = max((abs(t) for t in ticks), default=0.0)
    if largest >= 1e5 or (largest and largest < 1e-3):
        return lambda value: f"{value:.1e}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return lambda value: f"{value:.{decimals}f}"


def value_range(series: Sequence[Series]) -> tuple[float, float]:
    """The y range to show: a little room around the data, never past 1 for fractions."""
    ys = [y for s in series for y in s.y]
    low, high = min(ys), max(ys)
    if high == low:
        low, high = low - 0.5, high + 0.5
    pad = (high - low) * 0.05
    fractions = all(0.0 <= y <= 1.0 for y in ys)  # accuracy, F1, ...: the axis stops at 1
    low, high = low - pad, high + pad
    if fractions:
        low, high = max(0.0, low), min(1.0, high)
    return low, high


def _panel(
    canvas: Canvas,
    box: tuple[int, int, int, int],
    title: str,
    axis_titles: tuple[str, str],
    series: Sequence[Series],
) -> None:
    left, top, right, bottom = box
    x_title, y_title = axis_titles
    canvas.text(left, top - 40, title)
    canvas.text(left - 90, top - 20, y_title)
    xs = [x for s in series for x in s.x]
    x_min, x_max = min(xs), max(xs)
    if x_max == x_min:
        x_max = x_min + 1
    y_min, y_max = value_range(series)
    y_ticks = [t for t in nice_ticks(y_min, y_max, 6) if y_min <= t <= y_max]
    y_text = tick_format(y_ticks)
    for tick in y_ticks:  # grid and y labels
        y = round(bottom - (tick - y_min) / (y_max - y_min) * (bottom - top))
        canvas.rect(left, y, right, y, GREY)
        text = y_text(tick)
        canvas.text(left - 8 * len(text) - 8, y - 5, text)
    canvas.rect(left, top, left + 1, bottom, BLACK)
    canvas.rect(left, bottom, right, bottom + 1, BLACK)
    x_ticks = [t for t in nice_ticks(x_min, x_max, 8) if x_min <= t <= x_max]
    if all(float(t).is_integer() for t in xs):
        x_ticks = [t for t in x_ticks if float(t).is_integer()]
    x_text = tick_format(x_ticks)
    for tick in x_ticks:
        x = round(left + (tick - x_min) / (x_max - x_min) * (right - left))
        canvas.rect(x, bottom, x, bottom + 5, BLACK)
        text = x_text(tick)
        canvas.text(x - 4 * len(text), bottom + 10, text)
    canvas.text((left + right) // 2 - 4 * len(x_title), bottom + 28, x_title)

    def point(x: float, y: float) -> tuple[float, float]:
        y = min(max(y, y_min), y_max)
        return (
            left + (x - x_min) / (x_max - x_min) * (right - left),
            bottom - (y - y_min) / (y_max - y_min) * (bottom - top),
        )

    for index, curve in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        points = [point(x, y) for x, y in zip(curve.x, curve.y, strict=True)]
        for start, end in itertools.pairwise(points):
            canvas.line(start, end, color)
        if len(points) == 1:
            canvas.rect(
                round(points[0][0]) - 2,
                round(points[0][1]) - 2,
                round(points[0][0]) + 2,
                round(points[0][1]) + 2,
                color,
            )
        legend_y = top - 40 + 14 * index  # a column at the right of the title row
        canvas.rect(right - 150, legend_y + 4, right - 136, legend_y + 5, color)
        canvas.text(right - 130, legend_y, curve.name[:16])


@dataclass(frozen=True)
class Panel:
    title: str
    y_title: str
    series: list[Series]


def _panels(rows: Sequence[Mapping[str, Any]], title: str) -> tuple[str, list[Panel]]:
    x_label, losses, others = series_from_metrics(rows)
    panels = [
        Panel(f"{title} loss".strip(), "loss", losses),
        Panel(f"{title} metrics".strip(), "value", others),
    ]
    panels = [panel for panel in panels if panel.series]
    if not panels:
        raise ValueError("no numeric metrics to plot yet")
    return x_label, panels


def render_curves(
    rows: Sequence[Mapping[str, Any]], title: str = "", *, use_matplotlib: bool | None = None
) -> bytes:
    """A PNG of the loss curves (left) and the other metrics (right).

    With matplotlib installed (the ``plot`` extra) it draws them; without it, the small
    raster writer here does, so the command works wherever the SDK does.
    """
    x_label, panels = _panels(rows, title)
    if use_matplotlib is None:
        import importlib.util

        use_matplotlib = importlib.util.find_spec("matplotlib") is not None
    if use_matplotlib:
        return _matplotlib_png(x_label, panels)
    panel_width, height = 560, 420
    canvas = Canvas(panel_width * len(panels), height)
    for index, panel in enumerate(panels):
        offset = index * panel_width
        _panel(
            canvas,
            (offset + 100, 80, offset + panel_width - 20, height - 60),
            panel.title,
            (x_label, panel.y_title),
            panel.series,
        )
    return canvas.png()


def _matplotlib_png(x_label: str, panels: Sequence[Panel]) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display needed
    from matplotlib import pyplot
    from matplotlib.ticker import MaxNLocator

    figure, axes = pyplot.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for axis, panel in zip(axes[0], panels, strict=True):
        for curve in panel.series:
            axis.plot(curve.x, curve.y, label=curve.name, marker="o" if len(curve.x) == 1 else "")
        axis.set_title(panel.title)
        axis.set_xlabel(x_label)
        axis.set_ylabel(panel.y_title)
        axis.set_ylim(*value_range(panel.series))
        axis.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=x_label in X_KEYS))
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    pyplot.close(figure)
    return buffer.getvalue()
