"""The keystroke-savings baselines of issue #15: suggestion functions for rnnrepl.infer.ksr.

Both read the text typed so far the way the simulator does: a word is a maximal run of word
characters (``rnnrepl.infer.words.in_word``), the word being typed is the run at the end of the
text (empty after a boundary), and its case is kept as in the text (``The`` and ``the`` are two
words, as the simulator's exact match needs).

- ``FrequencyCompleter``: the N most frequent training words that start with the typed prefix
  (what a plain phone keyboard does); ties go to the alphabetically first word.
- ``KneserNeyCompleter``: an interpolated Kneser-Ney word model of order 3 from ``nltk.lm``; the N
  words w with the typed prefix and the highest P(w | the last 2 words). Each line of text is one
  nltk sentence (padded with <s> ... </s>), in training and when typing: the context of a word is
  the words before it on its line, so the first word of a line is predicted from <s> <s>.

nltk is imported only by ``KneserNeyCompleter`` (bench/requirements-baselines.txt); the
frequency baseline and ``top_n`` need nothing beyond the standard library and rnnrepl.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from rnnrepl.infer.ksr import word_spans
from rnnrepl.infer.words import in_word, typed_part

Ranked = list[tuple[str, float]]  # (word, score), best first


def line_words(text: str) -> list[list[str]]:
    """The words of each line of `text` that has any, in order."""
    words = ([line[s:e] for s, e in word_spans(line)] for line in text.split("\n"))
    return [ws for ws in words if ws]


def context_words(text: str, k: int) -> tuple[str, ...]:
    """The last `k` whole words before the word being typed, on the current line only."""
    i = len(text) - len(typed_part(text))
    found: list[str] = []
    while len(found) < k:
        while i and text[i - 1] != "\n" and not in_word(text[i - 1]):
            i -= 1
        if not i or text[i - 1] == "\n":
            break
        end = i
        while i and in_word(text[i - 1]):
            i -= 1
        found.append(text[i:end])
    return tuple(reversed(found))


def best(words: Iterable[str], score: Callable[[str], float], n: int) -> Ranked:
    """The n best of `words` by score, ties to the alphabetically first; each word once."""
    scored = sorted({w: score(w) for w in words}.items(), key=lambda ws: (-ws[1], ws[0]))
    return scored[:n]


class Prefixed:
    """A ranked word list and, per prefix asked for, its words with that prefix, still ranked.

    Each prefix's list is filtered from its parent's (the prefix less its last letter), which
    the simulator asked for one keystroke earlier: typing a word costs its candidates, not the
    whole vocabulary per letter."""

    def __init__(self, ranked: Ranked) -> None:
        self._by_prefix: dict[str, Ranked] = {"": ranked}

    def ranked(self, prefix: str) -> Ranked:
        if prefix not in self._by_prefix:
            parent = self.ranked(prefix[:-1])
            self._by_prefix[prefix] = [(w, s) for w, s in parent if w.startswith(prefix)]
        return self._by_prefix[prefix]

    def first(self, prefix: str, n: int) -> list[str]:
        """The first n words that start with `prefix`."""
        return [w for w, _ in self.ranked(prefix)[:n]]


class FrequencyCompleter:
    """The N most frequent training words that start with the typed prefix; p = their share of
    the training words."""

    def __init__(self, text: str) -> None:
        counts = Counter(w for ws in line_words(text) for w in ws)
        total = sum(counts.values()) or 1
        ranked = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))
        self.index = Prefixed([(w, c / total) for w, c in ranked])

    def __call__(self, text: str, n: int) -> Ranked:
        return self.index.ranked(typed_part(text))[:n]


def top_n(prefix: str, n: int, levels: Sequence[tuple[Prefixed, Callable[[str], float]]]) -> Ranked:
    """The exact n best words with `prefix` under an interpolated model, from few candidates.

    `levels` runs from the lowest order (all words, ranked by the unigram score) to the full
    context; each is (the words seen after that level's context, ranked by that level's
    interpolated score; that score). In an interpolated model a word never seen after a context
    scores gamma(context) * (its score one level down) there, a monotone function of the lower
    score, so the n best at a level are among its seen words with the prefix (the first n of its
    ranked list) and the n best one level down. Exact up to ties created by float rounding.

    nltk 3.10 is such a model: ``InterpolatedLanguageModel.unmasked_score`` returns
    alpha + gamma * (the score one level down), ``KneserNey.alpha_gamma``'s alpha is
    max(count - discount, 0) / total, 0.0 for a word without a count after the context, and its
    gamma does not depend on the word; a context never seen gets alpha 0, gamma 1."""
    found: list[str] = []
    ranked: Ranked = []
    for seen, score in levels:
        ranked = best([*seen.first(prefix, n), *found], score, n)
        found = [w for w, _ in ranked]
    return ranked


class KneserNeyCompleter:
    """P(w | last 2 words) from nltk's interpolated Kneser-Ney of order 3, top N by prefix."""

    def __init__(self, text: str, order: int = 3) -> None:
        from kneser_ney import IndexedKneserNeyInterpolated
        from nltk.lm.preprocessing import padded_everygram_pipeline

        sentences = line_words(text)
        self.words = {w for ws in sentences for w in ws}  # never <s>, </s>, <UNK>
        self.model = IndexedKneserNeyInterpolated(order)
        self.model.fit(*padded_everygram_pipeline(order, sentences))
        self.order = order
        self._ranked: dict[tuple[str, ...], Prefixed] = {}

    def __call__(self, text: str, n: int) -> Ranked:
        before = context_words(text, self.order - 1)
        pad = ("<s>",) * (self.order - 1 - len(before))
        context = tuple(self.model.vocab.lookup((*pad, *before)))
        levels = [self._level(context[i:]) for i in range(len(context), -1, -1)]
        return top_n(typed_part(text), n, levels)

    def _level(self, context: tuple[str, ...]) -> tuple[Prefixed, Callable[[str], float]]:
        """(the words seen after `context`, ranked by P(w | context); that score)."""

        def score(word: str) -> float:
            return self.model.unmasked_score(word, context or None)

        if context not in self._ranked:
            seen = self._seen_after(context)
            self._ranked[context] = Prefixed(best(seen, score, len(seen)))
        return self._ranked[context], score

    def _seen_after(self, context: tuple[str, ...]) -> list[str]:
        if not context:
            return list(self.words)
        counts = self.model.counts[len(context) + 1].get(context) or {}
        return [w for w, c in counts.items() if c > 0 and w in self.words]
