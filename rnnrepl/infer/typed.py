"""How likely a model found the text typed so far: the probability it gave the last complete
token and the loss of all of them (bits per character, perplexity), kept along the text as it
is typed so that a keystroke costs its new tokens only.

The probabilities are those ``surprisal.Surprisal`` keeps for colours (a typed token's comes
from the distribution computed before it was typed: no model call), summed here per position,
so an edit re-sums from the first changed token on. The figures are those `rnnrepl score`
prints for the same text: the first token is predicted after the start token, as there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from rnnrepl.infer.prefix_cache import common_prefix
from rnnrepl.infer.surprisal import Surprisal
from rnnrepl.units import bits_per_character, perplexity

# float32 softmax can round a very unlikely token's p to 0; its loss is read as this p's
TINY = 1e-45


@dataclass(frozen=True)
class TypedScore:
    """The complete tokens of a text under one model (partial word at the end left out)."""

    tokens: int  # complete tokens scored
    loss: float  # their summed J_t = -log p, in nats
    characters: int  # characters of the text they cover
    last: str  # the last complete token, as `score` shows it
    last_prob: float  # the probability the model gave it
    skipped: int = 0  # tokens of a long paste left unscored (surprisal.LIMIT)

    @property
    def mean_loss(self) -> float:
        return self.loss / self.tokens if self.tokens else math.nan

    @property
    def perplexity(self) -> float:
        return perplexity(self.mean_loss) if self.tokens else math.nan

    @property
    def bits_per_character(self) -> float:
        """As ``ScoreSummary.bits_per_character``; NaN once a paste left tokens unscored (the
        characters of the scored ones are not known)."""
        if self.skipped:
            return math.nan
        return bits_per_character(self.mean_loss, self.tokens, self.characters)


class TypedScorer:
    """Running sums of the token losses of a text under one model. Worker thread only."""

    def __init__(self, surprisal: Surprisal) -> None:
        self.surprisal = surprisal
        self.tok = surprisal.tok
        self.ids: list[int] = []  # the tokens summed
        self.sums: list[float] = [0.0]  # sums[i]: the loss of ids[:i] (unscored ones as 0)
        self.skips: list[int] = [0]  # skips[i]: unscored tokens among ids[:i]

    def score(self, text: str, interrupt: Callable[[], bool] | None = None) -> TypedScore:
        """The figures of `text`'s complete tokens; `interrupt` as for the panel."""
        s = self.surprisal
        characters = s.rank(text, interrupt)
        c = common_prefix(self.ids, s.ids)
        del self.ids[c:], self.sums[c + 1 :], self.skips[c + 1 :]
        for i in range(c, len(s.ids)):
            scored = s.ranks[i] > 0
            loss = -math.log(max(s.probs[i], TINY)) if scored else 0.0
            self.ids.append(s.ids[i])
            self.sums.append(self.sums[-1] + loss)
            self.skips.append(self.skips[-1] + (not scored))
        n = len(self.ids)
        last = self.tok.token_text(self.ids[-1]) if n else ""
        last_prob = s.probs[-1] if n and s.ranks[-1] > 0 else math.nan
        skipped = self.skips[-1]
        return TypedScore(n - skipped, self.sums[-1], characters, last, last_prob, skipped)
