"""`rnnrepl info`'s loss curve: in the terminal (ui/curves.py) and, with `--plot FILE`, as an
image through matplotlib, an optional extra (`pip install 'rnnrepl[plot]'`), imported only here
and only when asked."""

from __future__ import annotations

import io
import math
from pathlib import Path

from rnnrepl.errors import CheckpointError, UsageError
from rnnrepl.train.history import Point
from rnnrepl.units import level_figure

PLOT_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def plot_format(path: str) -> str:
    """The image format --plot's file name asks for; a usage error for any other."""
    fmt = PLOT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(
            f"--plot writes .png, .svg or .pdf, not {Path(path).suffix or 'a file without one'}",
            path=path,
            hint="name the image FILE.png, FILE.svg or FILE.pdf",
        )
    return fmt


def require_matplotlib() -> None:
    """A usage error (exit 2) naming the extra when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(
            "--plot needs matplotlib, which is not installed",
            hint="pip install 'rnnrepl[plot]'",
        ) from None


def curve_points(points: list[Point]) -> list[tuple[int, float, float]]:
    return [(p.step, p.train_loss, p.val_loss) for p in points]


def write_plot(path: str, points: list[Point], level: str, model: Path) -> None:
    """Train and validation loss against steps as an image at `path`, written atomically."""
    from matplotlib.figure import Figure

    from rnnrepl.atomic import atomic_write_bytes

    if not points:
        raise CheckpointError(
            "the model file holds no training history to plot",
            path=str(model),
            hint="models record it when trained by this version of rnnrepl",
        )
    name, _ = level_figure(0.0, level)
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    steps = [p.step for p in points]
    for loss, label, style in (("train_loss", "train", "-"), ("val_loss", "validation", "o-")):
        ys = [_unit(getattr(p, loss), level) for p in points]
        ax.plot(steps, ys, style, label=label, markersize=3, linewidth=1)
    if name == "ppl":
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("bits per character" if name == "bpc" else "perplexity")
    ax.set_title(model.name)
    ax.grid(True, alpha=0.3)
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format=plot_format(path))
    atomic_write_bytes(Path(path), buf.getvalue())


def _unit(nats: float, level: str) -> float:
    return level_figure(nats, level)[1] if math.isfinite(nats) else math.nan
