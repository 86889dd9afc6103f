"""A run's loss history: one point per validation, bounded, as the resume state and the model
file's training summary carry it.

A point is (step, tokens seen, seconds trained, train loss, validation loss), losses in nats; the
train loss is the last step's before the validation. Beyond MAX_POINTS points the history is
thinned to KEEP points spread evenly over the steps (the point nearest each of KEEP evenly spaced
steps), always keeping the first, the last and the one with the best validation loss. Thinning is a
function of the points alone, so a resumed run thins exactly as an uninterrupted one.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, NamedTuple

MAX_POINTS = 2000
KEEP = 1000
COLUMNS = ("step", "tokens", "seconds", "train_loss", "val_loss")


class Point(NamedTuple):
    step: int
    tokens: int | None  # None: recorded before rnnrepl kept it (an older resume state)
    seconds: float | None
    train_loss: float
    val_loss: float


def add(points: list[Point], point: Point) -> list[Point]:
    """`points` with `point` appended, thinned when they grow past MAX_POINTS."""
    points = [*points, point]
    return thin(points) if len(points) > MAX_POINTS else points


def thin(points: list[Point], keep: int = KEEP) -> list[Point]:
    """About `keep` points spread evenly over the steps, plus the first, the last and the best."""
    if len(points) <= keep:
        return list(points)
    steps = [p.step for p in points]
    first, last = steps[0], steps[-1]
    chosen = {0, len(points) - 1, _best(points)}
    for k in range(keep):
        target = first + (last - first) * k / (keep - 1)
        i = bisect.bisect_left(steps, target)
        if i > 0 and (i == len(steps) or target - steps[i - 1] <= steps[i] - target):
            i -= 1
        chosen.add(i)
    return [points[i] for i in sorted(chosen)]


def _best(points: list[Point]) -> int:
    finite = [i for i, p in enumerate(points) if math.isfinite(p.val_loss)]
    return min(finite, key=lambda i: points[i].val_loss) if finite else 0


def from_resume(entries: list[list]) -> list[Point]:
    """The history of a resume state (checked by store.resume): [step, train, val] entries as
    rnnrepl wrote them before it kept tokens and seconds, or the five fields of a Point."""
    return [Point(e[0], None, None, e[1], e[2]) if len(e) == 3 else Point(*e) for e in entries]


def to_summary(points: list[Point]) -> dict[str, Any]:
    """The model file's form: named columns and rows of plain JSON (no NaN: null)."""
    return {"columns": list(COLUMNS), "points": [[_json(v) for v in p] for p in points]}


def from_summary(summary: Any) -> list[Point]:
    """The history a model file's training summary holds; [] when it has none (a file written
    before rnnrepl recorded one) or one it cannot read (any other tool may have written it)."""
    if not isinstance(summary, dict) or summary.get("columns") != list(COLUMNS):
        return []
    rows = summary.get("points")
    if not isinstance(rows, list) or not all(_row_ok(r) for r in rows):
        return []
    return [Point(r[0], r[1], r[2], _nan(r[3]), _nan(r[4])) for r in rows]


def _row_ok(row: Any) -> bool:
    if not (isinstance(row, list) and len(row) == len(COLUMNS)):
        return False
    step, *rest = row
    numbers = all(v is None or _is_number(v) for v in rest)
    return isinstance(step, int) and not isinstance(step, bool) and numbers


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _json(v: float | int | None) -> float | int | None:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)
