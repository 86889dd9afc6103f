"""The live meter: how well the model's suggestions fit what the person really types.

The key bindings (``keys.py``) feed it on the UI thread when a character is typed (not pasted,
generated, undone or deleted) and when a suggestion is accepted (Alt-1..9, Tab/Right, Alt-F),
with what the panel on screen offered for the text before that key (``shown``). It does O(1)
work per key (at most the length of the word being typed) and never calls the model.

- top-1: char and BPE models, the typed characters that were the first character the panel's
  top-1 token adds; word models, the finished words that were the top-1 next word shown before
  their first letter. Keys typed before the panel caught up with the text are not scored.
- in N: the finished words that were in the words column before their first letter (/stats also
  gives "at any point while typed", acceptance included). A word is followed only from a first
  letter typed or accepted at a word boundary, and finished by a boundary typed or accepted.
- saved: 1 - keystrokes / characters entered, the definition of ``eval --ksr``
  (``infer/ksr.py``): a typed character is one keystroke; an accepted suggestion is one keystroke
  for everything it inserts (letters and space); a closing mark that replaces an accepted space
  takes that space back out of the characters entered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WORD_CHARS = "_'’-"  # as rnnrepl.infer.words.in_word (that module imports torch; a test compares)


def in_word(ch: str) -> bool:
    return ch.isalnum() or ch in WORD_CHARS


@dataclass(frozen=True)
class Shown:
    """What the panel on screen offered for the text before a key."""

    char: str | None  # char and BPE levels: the next character its top-1 token adds
    word: str | None  # word level, at a word boundary: the top-1 next word
    words: tuple[str, ...] | None  # the words column (None: not shown)


def shown(view: Any, before: str, word_level: bool, words_on: bool) -> Shown | None:
    """What `view` (a ``state.View``) offered, if it is the panel for `before` (else None)."""
    if view is None or view.text != before:
        return None
    words = tuple(w for w, _ in view.words) if words_on else None
    if word_level:
        top_word = view.top[0][0] if view.top and not view.partial else None
        return Shown(None, top_word, words)
    return Shown(_next_char(view), None, words)


def _next_char(view: Any) -> str | None:
    """The character the top-1 token adds after the typed part (BPE: the piece being typed)."""
    if not view.top:
        return None
    token, typed = view.top[0][0], view.partial
    if len(token) > len(typed):
        return token[len(typed)]
    if not view.after:  # the top-1 token is the typed piece itself: the next token's start
        return None
    return view.after[0][0][:1] or None


@dataclass
class _Word:
    """A word followed from its first letter: what was offered for it."""

    first: tuple[str, ...] | None  # the words column before its first letter
    top: str | None  # word level: the top-1 next word before its first letter
    text: str = ""
    seen: set[str] = field(default_factory=set)  # every word the column showed while typed

    def see(self, offered: Shown | None) -> None:
        if offered is not None and offered.words:
            self.seen.update(offered.words)


@dataclass
class Meter:
    """Counts over a session (see the module docstring)."""

    typed: int = 0  # characters typed, one keystroke each
    accepted: int = 0  # suggestions accepted, one keystroke each
    accepted_chars: int = 0  # characters they inserted
    unspaced: int = 0  # accepted spaces a closing mark replaced
    chars_scored: int = 0  # typed characters with the panel for the text before them
    chars_top1: int = 0
    words: int = 0  # words followed from their first letter to their end
    words_top: int = 0  # ... with a top-1 next word before their first letter (word level)
    words_top1: int = 0
    words_shown: int = 0  # ... with the words column before their first letter
    words_first: int = 0  # ... in it
    words_any: int = 0  # ... in it at some point while typed
    _word: _Word | None = None

    @property
    def keystrokes(self) -> int:
        return self.typed + self.accepted

    @property
    def characters(self) -> int:
        return self.typed + self.accepted_chars - self.unspaced

    def type(self, before: str, char: str, offered: Shown | None) -> None:
        """`char` typed after `before` (the document and the input up to the cursor)."""
        self.typed += 1
        if offered is not None and offered.char is not None:
            self.chars_scored += 1
            self.chars_top1 += char == offered.char
        self._follow(before, char, offered)

    def accept(self, before: str, text: str, offered: Shown | None) -> None:
        """A suggestion inserted `text` after `before` with one keystroke."""
        self.accepted += 1
        self.accepted_chars += len(text)
        self._follow(before, text, offered)

    def unspace(self) -> None:
        """A closing mark replaced the space an acceptance inserted (then counts as typed)."""
        self.unspaced += 1

    def _follow(self, before: str, text: str, offered: Shown | None) -> None:
        word = self._current(before)
        if word is not None:
            word.see(offered)
        elif not before or not in_word(before[-1]):  # at a boundary: a word may begin here
            word = _Word(offered.words if offered else None, offered.word if offered else None)
            word.see(offered)
        for ch in text:
            if in_word(ch):
                if word is not None:
                    word.text += ch
                continue
            if word is not None and word.text:
                self._finish(word)
            word = None  # letters inserted after a boundary were never offered: not followed
        self._word = word

    def _current(self, before: str) -> _Word | None:
        """The followed word, if `before` still ends with it (nothing else changed it)."""
        word = self._word
        if word is None or not word.text or not before.endswith(word.text):
            return None
        start = len(before) - len(word.text)
        return word if start == 0 or not in_word(before[start - 1]) else None

    def _finish(self, word: _Word) -> None:
        self.words += 1
        if word.top is not None:
            self.words_top += 1
            self.words_top1 += word.text == word.top
        if word.first is not None:
            self.words_shown += 1
            self.words_first += word.text in word.first
            self.words_any += word.text in word.seen

    def top1(self) -> tuple[int, int]:
        """(hits, scored): per character at char and BPE level, per word at word level."""
        if self.words_top:
            return self.words_top1, self.words_top
        return self.chars_top1, self.chars_scored

    def status(self, n: int) -> str:
        """`top-1 41% · in 3 62% · saved 18%`, each figure once it has something to count
        (saved: once a suggestion has been accepted)."""
        if not self.keystrokes:
            return ""
        parts = []
        hits, scored = self.top1()
        if scored:
            parts.append(f"top-1 {_pct(hits, scored)}")
        if self.words_shown and n:  # n: the words column's size now (0: hidden)
            parts.append(f"in {n} {_pct(self.words_first, self.words_shown)}")
        if self.accepted and self.characters:
            saved = self.characters - self.keystrokes
            parts.append(f"saved {_pct(saved, self.characters)}")
        return " · ".join(parts)

    def rows(self) -> list[tuple[str, str]]:
        """/stats: every count, as (name, value) rows."""
        saved = self.characters - self.keystrokes
        return [
            (
                "characters",
                f"{self.characters:,} entered: {self.typed:,} typed, "
                f"{self.accepted_chars - self.unspaced:,} by {self.accepted:,} accepted suggestions",
            ),
            ("keystrokes", f"{self.keystrokes:,}"),
            ("saved", f"{saved:,} keystrokes ({_pct(saved, self.characters)} of the characters)"),
            ("top-1 character", _share(self.chars_top1, self.chars_scored, "typed characters")),
            ("top-1 word", _share(self.words_top1, self.words_top, "words, word level")),
            ("words", f"{self.words:,} followed from their first letter to their end"),
            ("in the words", _share(self.words_first, self.words_shown, "before the first letter")),
            ("… at any point", _share(self.words_any, self.words_shown, "while typed")),
        ]


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "–"


def _share(part: int, whole: int, of: str) -> str:
    return f"{part:,} of {whole:,} {of} ({_pct(part, whole)})" if whole else f"none scored ({of})"
