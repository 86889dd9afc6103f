"""A word cache: the words the text already holds, mixed into the model's word suggestions.

The cache model of Kuhn & De Mori (1990), in the unigram form Grave et al. (2017) compare their
neural cache with: a word the text has used (a name, a term) is likelier to come again than the
model, trained on other text, thinks. For the word being typed, with typed part `typed`:

    p(w) = (1 - LAMBDA) p_model(w | text, typed) + LAMBDA p_cache(w | typed)

where p_cache(w | typed) is the weight of the earlier words equal to w over that of all earlier
words beginning with `typed`, each earlier word weighted DECAY ** (words since it). When no earlier
word begins with `typed` the model's list is kept as it is. Words match exactly, case included (the
typist of ``ksr`` accepts only the exact word). LAMBDA and DECAY were chosen on held-out text that
the README's keystroke figures do not type (README "Keystrokes saved").

Every update is incremental: an earlier word's weight only ever shrinks by the same factor as all
the others, so the order of the words under a prefix changes only when one of them is added again,
and a short sorted list of the heaviest words under every prefix stays exact. A text that goes on
from the one read costs its new words only; an edit takes back the words read after it, one by
one; a long read (a big paste) polls `interrupt` and resumes where it stopped.
"""

from __future__ import annotations

import bisect
import heapq
from collections import defaultdict

from rnnrepl.infer.ksr import word_spans
from rnnrepl.infer.prefix_cache import Superseded, common_prefix
from rnnrepl.infer.word_batch import Words
from rnnrepl.infer.words import Interrupt, in_word, typed_part

LAMBDA = 0.2
DECAY = 0.999
TOP = 9  # the heaviest words kept sorted under every prefix (the REPL shows at most 9)
REBASE = 20_000  # words between rescalings of the stored weights (DECAY ** -REBASE: ~5e8)
POLL = 256  # words read between polls of `interrupt`
TAKE_BACK = 256  # words taken back one by one after an edit; more: the text is read again


class WordCache:
    """The words of a text with their decayed weights, indexed by every prefix of each word."""

    def __init__(self, lam: float = LAMBDA, decay: float = DECAY) -> None:
        self.lam, self.decay = lam, decay
        self.clear()

    def clear(self) -> None:
        self.text = ""  # the text read (it ends where a word may begin)
        self.count = 0  # words read
        self._base = 0  # the stored weight of word j is decay ** (base - j)
        self._weight: dict[str, dict[str, float]] = defaultdict(dict)  # prefix -> word -> weight
        self._total: dict[str, float] = defaultdict(float)  # prefix -> the sum of its weights
        self._top: dict[str, list[str]] = defaultdict(list)  # prefix -> heaviest words, sorted
        self._times: dict[str, int] = defaultdict(int)  # word -> how many times it was read
        self._read: list[tuple[str, int]] = []  # each word read, and where it ends in `text`

    def read(self, text: str, interrupt: Interrupt = None) -> None:
        """Hold the words of `text`, which ends at a word boundary or a word's start: only the
        words after what was read before when `text` goes on from it; after an edit, the words
        read after the edit are taken back first (all read again when there are many).
        `interrupt` is polled every POLL words; when it returns True, ``Superseded``, and the
        next call goes on from there."""
        if not text.startswith(self.text):
            self._take_back(text)
        done = len(self.text)
        for i, (start, end) in enumerate(word_spans(text[done:]), 1):
            self.add(text[done + start : done + end], done + end)
            if interrupt is not None and not i % POLL and interrupt():
                self.text = text[: done + end]
                raise Superseded
        self.text = text

    def add(self, word: str, end: int = 0) -> None:
        """One more word at the end of the text (ending at `end` in it)."""
        if self.count - self._base >= REBASE:
            self._rescale()
        weight = self.decay ** (self._base - self.count)
        for cut in range(len(word) + 1):
            prefix = word[:cut]
            weights = self._weight[prefix]
            weights[word] = weights.get(word, 0.0) + weight
            self._total[prefix] += weight
            self._promote(prefix, word, weights)
        self._times[word] += 1
        self._read.append((word, end))
        self.count += 1

    def _take_back(self, text: str) -> None:
        """Forget the words read that `text` does not begin with, as they were read."""
        same = common_prefix(self.text, text)  # the words that end within it are kept
        keep = bisect.bisect_right(self._read, same, key=lambda read: read[1])
        if keep and self._read[keep - 1][1] == same < len(text) and in_word(text[same]):
            keep -= 1  # the text goes on with that word: it is another word now
        if self.count - keep > TAKE_BACK:
            self.clear()
            return
        while self.count > keep:
            self._remove_last()
        self.text = self.text[: self._read[-1][1]] if self._read else ""

    def _remove_last(self) -> None:
        """Take back the last word read, as if it had never been."""
        word, _ = self._read.pop()
        self.count -= 1
        weight = self.decay ** (self._base - self.count)
        self._times[word] -= 1
        gone = not self._times[word]
        if gone:
            del self._times[word]
        for cut in range(len(word) + 1):
            prefix = word[:cut]
            weights = self._weight[prefix]
            if gone:
                del weights[word]
            else:
                weights[word] -= weight
            self._total[prefix] -= weight
            if not weights:
                del self._weight[prefix], self._total[prefix]
                self._top.pop(prefix, None)
            elif word in self._top[prefix]:  # it may have fallen behind another word
                self._demote(prefix, word, weights)

    def probs(self, typed: str, n: int) -> Words:
        """The n words of the cache likeliest to be the one beginning with `typed`, with their
        p_cache(w | typed), best first."""
        total = self._total.get(typed, 0.0)
        if not total:
            return []
        weights = self._weight[typed]
        top = self._top[typed] if n <= TOP else heapq.nlargest(n, weights, key=weights.get)
        return [(w, weights[w] / total) for w in top[:n]]

    def mix(self, found: Words, typed: str, n: int) -> Words:
        """The model's words `found` for a word whose typed part is `typed`, mixed with the words
        read so far: the n likeliest, best first."""
        total = self._total.get(typed, 0.0)
        if not total or not self.lam:
            return found[:n]
        weights, keep = self._weight[typed], 1 - self.lam
        mixed = {w: keep * p + self.lam * weights.get(w, 0.0) / total for w, p in found}
        for w, p in self.probs(typed, n):
            mixed.setdefault(w, self.lam * p)
        return heapq.nlargest(n, mixed.items(), key=lambda item: item[1])

    def words(self, found: Words, text: str, n: int, interrupt: Interrupt = None) -> Words:
        """``mix`` for the word being typed at the end of `text`, with the cache of the text
        before that word (``read``, with `interrupt`)."""
        typed = typed_part(text)
        self.read(text[: len(text) - len(typed)], interrupt)
        return self.mix(found, typed, n)

    def _promote(self, prefix: str, word: str, weights: dict[str, float]) -> None:
        """Keep `word` in its place among the heaviest words under `prefix` after its weight
        grew (no other weight changed order)."""
        top = self._top[prefix]
        if word in top:
            top.remove(word)
        elif len(top) >= TOP and weights[top[-1]] >= weights[word]:
            return
        _insert(top, word, weights)

    def _demote(self, prefix: str, word: str, weights: dict[str, float]) -> None:
        """Keep `word`, listed under `prefix`, in its place after its weight shrank (or went):
        a word not listed may now be heavier (the list is made again only then)."""
        top = self._top[prefix]
        top.remove(word)
        if word not in weights:
            if len(weights) > len(top):
                self._top[prefix] = heapq.nlargest(TOP, weights, key=weights.get)
        elif len(top) + 1 >= len(weights) or weights[word] >= weights[top[-1]]:
            _insert(top, word, weights)  # every word not listed weighs no more than top[-1]
        else:
            self._top[prefix] = heapq.nlargest(TOP, weights, key=weights.get)

    def _rescale(self) -> None:
        """Bring the stored weights back near 1 (the same factor for all keeps every ratio)."""
        factor = self.decay ** (self.count - self._base)
        for weights in self._weight.values():
            for word in weights:
                weights[word] *= factor
        for prefix in self._total:
            self._total[prefix] *= factor
        self._base = self.count


def _insert(top: list[str], word: str, weights: dict[str, float]) -> None:
    """Put `word` into the sorted list `top` (heaviest first, at most TOP long)."""
    at = len(top)
    while at and weights[top[at - 1]] < weights[word]:
        at -= 1
    top.insert(at, word)
    del top[TOP:]
