"""Interpretable units (Karpathy, Johnson and Fei-Fei 2015, "Visualizing and Understanding
Recurrent Networks"): which hidden units of a character model track simple properties of the
text it reads.

Each unit's activation after reading each character (h_t of its layer) is correlated (Pearson)
with a property of the text at that character; the units with the largest |r| are the ones that
"track" it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnrepl.infer.insides import trace
from rnnrepl.model.lm import LanguageModel

OPEN, CLOSE = "([{", ")]}"

PROPERTIES = {
    "in quotes": "after an opening double quote, up to its closing one",
    "in brackets": "inside ( ), [ ] or { }",
    "line position": "characters since the last line break",
    "word start": "the first letter or digit of a word",
    "line break": "the state right after reading a line break",
}


@dataclass(frozen=True)
class Match:
    prop: str
    layer: int  # 1-based, as `--unit L:I` names it
    unit: int  # 0-based
    r: float  # Pearson correlation of the unit's activation with the property


def properties(text: str) -> dict[str, np.ndarray]:
    """Each property's value at each character of `text` (float arrays of len(text))."""
    n = len(text)
    quotes, brackets, position = np.zeros(n), np.zeros(n), np.zeros(n)
    inside, depth, col = False, 0, 0
    for j, ch in enumerate(text):
        inside ^= ch == '"'
        depth = max(0, depth + (ch in OPEN) - (ch in CLOSE))
        col = 0 if ch == "\n" else col + 1
        quotes[j], brackets[j], position[j] = inside, depth > 0, col
    chars = np.array(list(text)) if n else np.array([], dtype="<U1")
    alnum = np.char.isalnum(chars)
    starts = alnum & ~np.concatenate([[False], alnum[:-1]])
    return {
        "in quotes": quotes,
        "in brackets": brackets,
        "line position": position,
        "word start": starts.astype(float),
        "line break": (chars == "\n").astype(float),
    }


def activations(model: LanguageModel, ids: list[int], start_id: int) -> list[np.ndarray]:
    """Per layer, (len(ids), H): each unit's h after reading each token."""
    tr = trace(model, [*ids, start_id], start_id, detail=False)  # one step more: the last token
    return [layer.h[1:] for layer in tr.layers]


def correlations(acts: np.ndarray, prop: np.ndarray) -> np.ndarray | None:
    """Pearson r of every unit (column of `acts`) with `prop`; None if `prop` never varies."""
    p = prop - prop.mean()
    if not p.any():
        return None
    a = acts - acts.mean(0)
    scale = np.sqrt((a * a).sum(0) * (p * p).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * p[:, None]).sum(0) / scale
    return np.nan_to_num(r)  # a unit that never varies tracks nothing


def best_units(layers: list[np.ndarray], props: dict[str, np.ndarray], top: int) -> list[Match]:
    """For each property that varies, the `top` units of all layers with the largest |r|."""
    out = []
    for name, prop in props.items():
        found = []
        for li, acts in enumerate(layers, 1):
            r = correlations(acts, prop)
            if r is not None:
                found += [Match(name, li, int(u), float(r[u])) for u in range(len(r))]
        found.sort(key=lambda m: (-abs(m.r), m.layer, m.unit))
        out += found[:top]
    return out
