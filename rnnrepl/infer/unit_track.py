"""One hidden unit's activation along a text as it is typed (the REPL's `/neuron L:I`).

After each token the model's state holds every layer's h; the unit's value there colours the
token (``Mark.bucket`` = UNIT_BASE + one of SHADES levels, blue -1 to red +1). The states along
the text are kept (the last LIMIT tokens), so a keystroke costs one model step and an edit
re-feeds from the token it changed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rnnrepl.infer.prefix_cache import FEED_LIMIT, Superseded, common_prefix
from rnnrepl.infer.runner import ModelRunner
from rnnrepl.infer.surprisal import Mark
from rnnrepl.model.lm import RNNLM
from rnnrepl.text.spans import token_spans

UNIT_BASE = 4  # bucket numbers after the four surprisal buckets
SHADES = 7  # activation levels, -1 .. +1
LIMIT = FEED_LIMIT  # tokens coloured at the end of a long text
CHECK_EVERY = 64  # tokens between two looks at `interrupt`


def unit_kind(layer: int, unit: int) -> str:
    """The colour kind (Settings.color) for a unit: "unit L:I"."""
    return f"unit {layer}:{unit}"


def parse_kind(kind: str) -> tuple[int, int] | None:
    """(layer from 1, unit from 0) of a "unit L:I" kind; None for any other kind."""
    if not kind.startswith("unit "):
        return None
    layer, _, unit = kind[5:].partition(":")
    return int(layer), int(unit)


def unit_problem(model, layer: int, unit: int) -> str | None:
    """Why the model has no such unit to show, or None."""
    if not isinstance(model, RNNLM):
        return "the fixed-window model has no recurrent units to follow"
    layers, hidden = model.cfg.layers, model.cfg.hidden
    if not (1 <= layer <= layers and 0 <= unit < hidden):
        return f"no unit {layer}:{unit}: layers 1-{layers}, units 0-{hidden - 1}"
    return None


def level(value: float) -> int:
    """0 (at -1) .. SHADES - 1 (at +1)."""
    return min(SHADES - 1, max(0, int((value + 1) / 2 * SHADES)))


class UnitTrack:
    """The unit's value after each complete token of the latest text. Worker thread only."""

    def __init__(self, runner: ModelRunner, tokenizer) -> None:
        self.runner, self.tok = runner, tokenizer
        self.unit: tuple[int, int] | None = None
        self.ids: list[int] = []
        self.states: list = []  # the state after each of ids[low:]
        self.values: list[float] = []  # the unit after each of ids[low:]
        self.low = 0  # tokens before it are not coloured (a long text's start)

    def forget(self) -> None:
        """Drop the unit and its states (colours went back to surprisal or off)."""
        self.unit, self.ids, self.states, self.values, self.low = None, [], [], [], 0

    def pending(self, ids: list[int]) -> int:
        return min(LIMIT, len(ids) - common_prefix(self.ids, ids))

    def marks(
        self,
        body: str,
        ids: list[int],
        unit: tuple[int, int],
        since: int = 0,
        interrupt: Callable[[], bool] | None = None,
    ) -> tuple[Mark, ...]:
        """Marks of the complete tokens `ids` of `body` that end after character `since`."""
        self._feed(ids, unit, interrupt)
        spans = token_spans(self.tok, body)[self.low :]
        return tuple(
            Mark(a, b, UNIT_BASE + level(v), 0, v)
            for (a, b), v in zip(spans, self.values, strict=False)
            if b > since
        )

    def _feed(self, ids: list[int], unit: tuple[int, int], interrupt) -> None:
        """Values for ids[keep:], where ids[:keep] were fed before (for the same unit)."""
        keep = common_prefix(self.ids, ids) if unit == self.unit else 0
        if keep <= self.low or len(ids) - self.low > 2 * LIMIT:  # afresh, from LIMIT back
            self.low = max(0, len(ids) - LIMIT)
            self.ids, self.states, self.values = list(ids[: self.low]), [], []
        else:
            del self.ids[keep:], self.states[keep - self.low :], self.values[keep - self.low :]
        self.unit = unit
        state = self.states[-1] if self.states else self._start()
        layer, index = unit[0] - 1, unit[1]
        with torch.inference_mode():
            for j in range(len(self.ids), len(ids)):
                _, state = self.runner.step([ids[j]], state)
                self.ids.append(ids[j])
                self.states.append(state)
                self.values.append(float(state[0][layer, 0, index]))
                if interrupt is not None and j % CHECK_EVERY == 0 and interrupt():
                    raise Superseded

    def _start(self):
        """The state a text starts from: after the start token, from the model's initial one."""
        with torch.inference_mode():
            return self.runner.step([self.runner.start_id], None)[1]
