"""nltk's interpolated Kneser-Ney with its counts served from an index, not rescanned per call.

nltk.lm's ``KneserNey`` smoothing (nltk 3.10) computes a continuation count by scanning every
n-gram of the next order on every call (``_continuation_counts``), and a gamma by scanning the
context's successors (``_count_values_gt_zero``): one ``score`` on WikiText-2 (a sentence per
line) loops over its 670,000 two-word contexts. ``IndexedKneserNey`` returns the same numbers
from tables built once from the same counter (on first use, after ``fit``); the formulas and
the interpolation are nltk's own. tests/test_ksr_baselines.py checks the scores equal stock
nltk's on a small corpus.
"""

from __future__ import annotations

from collections import Counter

from nltk.lm.models import InterpolatedLanguageModel
from nltk.lm.smoothing import KneserNey, _count_values_gt_zero


class IndexedKneserNey(KneserNey):
    """``KneserNey`` whose continuation counts and gammas come from tables."""

    def __init__(self, vocabulary, counter, order, discount=0.1, **kwargs) -> None:
        super().__init__(vocabulary, counter, order, discount=discount, **kwargs)
        self._continuations: Counter | None = None  # (context, word) -> distinct left words
        self._totals: Counter = Counter()  # context -> sum of those over its words
        self._n_plus: dict[tuple, int] = {}  # context -> successors seen (gamma's numerator)

    def _index(self) -> Counter:
        """What ``_continuation_counts`` counts, for every (context, word) at once."""
        if self._continuations is None:
            cont: Counter = Counter()
            for k in range(2, self._order + 1):  # contexts of length k - 2
                for prefix_ngram, counts in self.counts[k].items():
                    context = prefix_ngram[1:]
                    seen = [w for w, c in counts.items() if c > 0]
                    cont.update((context, w) for w in seen)
                    self._totals[context] += len(seen)
            self._continuations = cont
        return self._continuations

    def _continuation_counts(self, word, context=tuple()):
        return self._index()[(context, word)], self._totals[context]

    def alpha_gamma(self, word, context):
        """nltk's ``KneserNey.alpha_gamma``, with gamma's successor count cached."""
        prefix_counts = self.counts[context]
        word_continuation_count, total_count = (
            (prefix_counts[word], prefix_counts.N())
            if len(context) + 1 == self._order
            else self._continuation_counts(word, context)
        )
        alpha = max(word_continuation_count - self.discount, 0.0) / total_count
        if context not in self._n_plus:
            self._n_plus[context] = _count_values_gt_zero(prefix_counts)
        gamma = self.discount * self._n_plus[context] / total_count
        return alpha, gamma


class IndexedKneserNeyInterpolated(InterpolatedLanguageModel):
    """``nltk.lm.KneserNeyInterpolated`` over ``IndexedKneserNey``."""

    def __init__(self, order: int, discount: float = 0.1, **kwargs) -> None:
        params = {"discount": discount, "order": order}
        super().__init__(IndexedKneserNey, order, params=params, **kwargs)
