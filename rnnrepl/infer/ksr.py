"""Keystroke savings: a person typing a text word by word with N whole-word suggestions.

Before every keystroke inside a word, including before its first letter, the N suggestions
for the text typed so far are shown (``Predictor.words``). When the intended word is among
them (exactly, case included), one keystroke accepts it together with the following space, if
the text has a space right after the word; otherwise the person types the next character.
Everything between words (spaces not taken by an acceptance, punctuation, line breaks) is typed
one keystroke per character, with no suggestions. A word is a maximal run of word characters
(``in_word``), as for the suggestions themselves.

KSR = 1 - keystrokes / characters. The core does no I/O: progress goes to a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from rnnrepl.infer.words import in_word

Suggest = Callable[[str, int], list[tuple[str, float]]]  # (text so far, n) -> [(word, p)]
SuggestAt = Callable[[int], list[tuple[str, float]]]  # (characters typed so far) -> [(word, p)]
Progress = Callable[[int, int], None] | None  # (words done, words in all)


@dataclass(frozen=True)
class KsrResult:
    """What typing one text cost. Rates are None for an empty text."""

    characters: int  # in the text typed
    keystrokes: int
    words: int
    accepted: int  # words taken from a suggestion
    accepted_first: int  # ... before their first letter

    @property
    def ksr(self) -> float | None:
        return 1 - self.keystrokes / self.characters if self.characters else None

    @property
    def first_share(self) -> float | None:
        return self.accepted_first / self.words if self.words else None

    @property
    def keystrokes_per_word(self) -> float | None:
        return self.keystrokes / self.words if self.words else None

    def to_dict(self) -> dict:
        rates = {"ksr": self.ksr, "accepted_before_first_letter": self.first_share}
        return {**rates, "keystrokes_per_word": self.keystrokes_per_word, **asdict(self)}

    def __add__(self, other: KsrResult) -> KsrResult:
        return KsrResult(*(a + b for a, b in zip(_fields(self), _fields(other), strict=True)))


def _fields(r: KsrResult) -> tuple[int, ...]:
    return (r.characters, r.keystrokes, r.words, r.accepted, r.accepted_first)


def word_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of every word of `text`, in order."""
    i, n = 0, len(text)
    while i < n:
        if not in_word(text[i]):
            i += 1
            continue
        start = i
        while i < n and in_word(text[i]):
            i += 1
        yield start, i


def limit_words(text: str, limit: int | None) -> str:
    """The prefix of `text` that ends with its `limit`-th word (all of it when None or fewer)."""
    if limit is None:
        return text
    for count, (_, end) in enumerate(word_spans(text), 1):
        if count == limit:
            return text[:end]
    return text


def type_word(suggest: Suggest, text: str, start: int, end: int, n: int) -> tuple[int, int]:
    """Type text[start:end] after text[:start]: (keystrokes, letters typed before acceptance);
    the keystrokes include the acceptance, and the letters are -1 when nothing was accepted."""
    return _type_word(lambda pos: suggest(text[:pos], n), text, start, end)


def _type_word(at: SuggestAt, text: str, start: int, end: int) -> tuple[int, int]:
    word = text[start:end]
    for typed in range(len(word)):
        if any(w == word for w, _ in at(start + typed)):
            return typed + 1, typed
    return len(word), -1


def simulate(suggest: Suggest, text: str, n: int = 3, on_progress: Progress = None) -> KsrResult:
    """Type `text` with `n` suggestions from `suggest` (see the module docstring)."""
    return replay(lambda pos: suggest(text[:pos], n), text, on_progress)


def replay(at: SuggestAt, text: str, on_progress: Progress = None) -> KsrResult:
    """``simulate`` with the suggestions shown after text[:pos] given by `at(pos)`: a table
    computed beforehand (``ksr_batch``) or a model asked on the way."""
    spans = list(word_spans(text))
    keys = accepted = first = 0
    pos = 0  # characters of the text accounted for so far
    for done, (start, end) in enumerate(spans, 1):
        keys += start - pos  # the boundary characters before the word, one key each
        cost, letters = _type_word(at, text, start, end)
        keys += cost
        pos = end
        if letters >= 0:
            accepted += 1
            first += letters == 0
            pos += text.startswith(" ", end)  # the acceptance typed the space too
        if on_progress is not None:
            on_progress(done, len(spans))
    keys += len(text) - pos  # what follows the last word
    return KsrResult(len(text), keys, len(spans), accepted, first)
