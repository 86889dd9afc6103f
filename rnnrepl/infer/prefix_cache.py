"""Incremental bookkeeping for a text that changes a little at a time (the REPL's buffer).

``IncrementalEncoder`` re-tokenizes only from the last safe boundary before an edit.
``StateCache`` keeps recurrent states along the token sequence with bounded memory: every
position near the end (so backspace costs one step) and a sparse grid further back (so an
edit deep in the past re-feeds fewer than ``spacing`` tokens). No full-vocabulary logits are
kept per position: only the latest ones. ``PrefixCache`` keeps the two in step for a Predictor.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from rnnrepl.model.lm import State
from rnnrepl.text.bpe import SAFE_CUT

DENSE = 32  # the last DENSE positions each keep their state: backspace = one model step
SPACING = 64  # further back, one state every SPACING tokens
MAX_SPARSE = 256  # more grid states than this doubles the spacing: memory stays bounded
MARK_EVERY = 64  # characters between the encoder's resumable boundaries
# A span longer than this is read from its last FEED_LIMIT tokens, as if the text began there:
# a recurrent state forgets long before (the bundled models' next-token distributions after
# 9,000 tokens and after their last 1,024 differ by a KL below 1e-6), and feeding a 1 MB paste
# whole would take the char model 20 minutes on two CPU cores instead of 2 seconds.
FEED_LIMIT = 2048
_SPACE = re.compile(r"\s")


class Superseded(Exception):
    """A newer request made this computation stale; the cache stays consistent."""


def common_prefix(a, b) -> int:
    """Length of the common prefix of two strings or lists (C-speed slice comparisons)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n - 1  # a[:lo] == b[:lo] and a[:hi + 1] != b[:hi + 1]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass(frozen=True)
class Mark:
    """A resumable point: text[:offset] encodes to exactly ids[:tokens], `unknown` of them <unk>."""

    offset: int
    tokens: int
    unknown: int


class IncrementalEncoder:
    """``tokenizer.split_partial`` for a text edited mostly near its end, in O(edit) time.

    A boundary is safe where encoding the two halves separately gives the tokens of the whole:
    after any whitespace (word level and lowercased char level: words and Unicode case rules
    never span whitespace), anywhere for a plain character tokenizer, and at BPE level just
    before a whitespace character that follows another character (a BPE pre-token carries
    the space before it: " cat"; so a mark there holds only while the character after it,
    the space, is unchanged).
    """

    def __init__(self, tokenizer) -> None:
        self.tok = tokenizer
        self.anywhere = tokenizer.level == "char" and not tokenizer.lowercase
        self.before_space = tokenizer.level == "bpe"
        self.reset()

    def reset(self) -> None:
        self.text = ""
        self.ids: list[int] = []  # complete tokens of self.text (read-only for callers)
        self.partial = ""
        self.unknown = 0
        self.marks = [Mark(0, 0, 0)]

    def split(self, text: str) -> tuple[list[int], str, int]:
        """(ids of the complete tokens, the half-typed word, how many leading ids are unchanged)."""
        if text == self.text:
            return self.ids, self.partial, len(self.ids)
        keep = common_prefix(self.text, text) - self.before_space  # (bool: 0 or 1)
        while self.marks[-1].offset > keep and len(self.marks) > 1:
            self.marks.pop()
        mark = self.marks[-1]
        del self.ids[mark.tokens :]
        self._mark_forward(text, mark)
        last = self.marks[-1]
        tail_ids, partial = self.tok.split_partial(text[last.offset :])
        self.ids.extend(tail_ids)
        self.text, self.partial = text, partial
        self.unknown = last.unknown + tail_ids.count(0)
        return self.ids, partial, mark.tokens

    def _mark_forward(self, text: str, mark: Mark) -> None:
        """Encode whole segments of at least MARK_EVERY characters, leaving a mark after each."""
        if self.anywhere:
            self._mark_chars(text, mark)
            return
        while True:
            cut = self._boundary(text, mark.offset + MARK_EVERY)
            if cut is None:
                return
            seg = self.tok.encode(text[mark.offset : cut])
            self.ids.extend(seg)
            mark = Mark(cut, len(self.ids), mark.unknown + seg.count(0))
            self.marks.append(mark)

    def _mark_chars(self, text: str, mark: Mark) -> None:
        """_mark_forward for plain characters (one token each, cut anywhere): a long paste is
        encoded in one vectorised call, not a Python call per segment."""
        n = (len(text) - 1 - mark.offset) // MARK_EVERY  # marks that leave something after them
        if n <= 0:
            return
        seg = self.tok.encode_array(text[mark.offset : mark.offset + n * MARK_EVERY])
        self.ids.extend(seg.tolist())
        unknown = np.cumsum(seg == 0)[MARK_EVERY - 1 :: MARK_EVERY].tolist()  # (n,)
        for i, unk in enumerate(unknown, 1):
            step = i * MARK_EVERY
            self.marks.append(Mark(mark.offset + step, mark.tokens + step, mark.unknown + unk))

    def _boundary(self, text: str, at_least: int) -> int | None:
        """The first safe boundary >= at_least that leaves something after it, or None."""
        if at_least >= len(text):
            return None
        if self.anywhere:
            return at_least
        if self.before_space:
            m = SAFE_CUT.search(text, at_least)
            return None if m is None else m.start()
        m = _SPACE.search(text, at_least - 1)
        return None if m is None or m.end() >= len(text) else m.end()


class StateCache:
    """Recurrent states after ``start + ids[:j]`` for a bounded set of positions j.

    ``logits(ids)`` returns the next-token logits after ``start + ids``, feeding only the tokens
    after the longest cached prefix (at most the last FEED_LIMIT of them): in one call per grid
    segment for a long paste, one token at a time inside the dense tail so that every recent
    position keeps its state.
    """

    def __init__(self, step: Callable[[list[int], State | None], tuple[Tensor, State]], start: int):
        self.step = step  # (token ids, state) -> (last logits (vocab,), state)
        self.start = start
        self.chunk = 256
        self.version = 0  # bumped whenever the cached sequence changes
        self.reset()

    def reset(self) -> None:
        logits, state = self.step([self.start], None)
        self.ids: list[int] = []
        self.states: dict[int, State] = {0: state}
        self.first = logits
        self.last: tuple[int, Tensor] | None = (0, logits)
        self.spacing = SPACING
        self.dense_lo = 1  # positions below this hold grid states only
        self.fed = 0  # tokens run through the model since the last reset (a cost counter)
        self.version += 1

    def move(self, ids: list[int], known: int = 0) -> int:
        """Make `ids` the cached sequence; drop states past the common prefix. Returns it."""
        old = self.ids
        self.version += 1
        n = min(len(old), len(ids))
        c = known if known <= n else n
        if not known:
            c = common_prefix(old, ids)
        else:
            while c < n and old[c] == ids[c]:
                c += 1
        for j in range(c + 1, len(old) + 1):
            self.states.pop(j, None)
        if self.last is not None and self.last[0] > c:
            self.last = None
        del old[c:]
        old.extend(ids[c:])
        return c

    def logits(self, ids: list[int], known: int = 0, interrupt=None) -> Tensor:
        """Next-token logits after start + ids (see class docstring)."""
        self.move(ids, known)
        t = len(ids)
        if self.last is not None and self.last[0] == t:
            return self.last[1]
        if t == 0:
            self.last = (0, self.first)
            return self.first
        j = t - 1
        while j not in self.states:
            j -= 1
        self.last = None
        logits = self._feed(j, t, interrupt)
        self.last = (t, logits)
        self._prune(t)
        return logits

    def state(self, t: int) -> State:
        """The state after start + ids[:t]; t must be the position last asked for."""
        return self.states[t]

    def nearest(self, t: int) -> tuple[int, State]:
        """(j, the state after start + ids[:j]) for the cached position j <= t nearest to t."""
        while t not in self.states:
            t -= 1
        return t, self.states[t]

    def _feed(self, j: int, t: int, interrupt) -> Tensor:
        if t - j > FEED_LIMIT:
            j = t - FEED_LIMIT  # see FEED_LIMIT: restart from the state after the start token
            self.states[j] = self.states[0]
        state, pos = self.states[j], j
        self.dense_lo = min(self.dense_lo, j + 1)
        dense_from = t - DENSE
        logits = self.first
        while pos < t:
            if pos >= dense_from:
                nxt = pos + 1
            else:
                grid = (pos // self.spacing + 1) * self.spacing
                nxt = min(grid, dense_from, pos + self.chunk)
            logits, state = self.step(self.ids[pos:nxt], state)
            self.fed += nxt - pos
            pos = nxt
            if pos % self.spacing == 0 or pos >= dense_from:
                self.states[pos] = state
            if pos // self.spacing > MAX_SPARSE:
                self._coarsen(min(pos, dense_from + 1))
            if interrupt is not None and pos < t and interrupt():
                raise Superseded
        return logits

    def _prune(self, t: int) -> None:
        """Drop the non-grid states that have left the dense tail; double the grid if too dense."""
        upto = t - DENSE  # keep t - DENSE too: backspacing DENSE - 1 times costs one step each
        for p in range(max(self.dense_lo, 1), upto):
            if p % self.spacing:
                self.states.pop(p, None)
        self.dense_lo = max(self.dense_lo, upto)
        while t // self.spacing > MAX_SPARSE:
            self._coarsen(upto)

    def _coarsen(self, upto: int) -> None:
        """Double the grid spacing: drop every other grid state below `upto`."""
        old, self.spacing = self.spacing, self.spacing * 2
        for p in range(old, upto, 2 * old):
            self.states.pop(p, None)

    def extend(self, token: int) -> Tensor:
        """Append one token to the cached sequence (generation): exactly one model step."""
        t = len(self.ids)
        if self.last is None or self.last[0] != t:
            self.logits(list(self.ids))
        self.ids.append(token)
        self.version += 1
        logits, state = self.step([token], self.states[t])
        self.fed += 1
        self.states[t + 1] = state
        self.last = (t + 1, logits)
        self._prune(t + 1)
        return logits


class PrefixCache:
    """The text the model has read: an ``IncrementalEncoder`` and a ``StateCache`` kept in step,
    so that a keystroke re-tokenizes and re-feeds only what changed."""

    def __init__(
        self, step: Callable[[list[int], State | None], tuple[Tensor, State]], start: int, tokenizer
    ) -> None:
        self.states = StateCache(step, start)
        self.encoder = IncrementalEncoder(tokenizer)
        self._synced = True  # the state cache holds exactly the encoder's last ids

    def reset(self) -> None:
        self.states.reset()
        self.encoder.reset()
        self._synced = True

    @property
    def fed(self) -> int:
        """Tokens run through the model so far (a cost counter)."""
        return self.states.fed

    @property
    def version(self) -> int:
        """Bumped whenever the cached sequence changes."""
        return self.states.version

    @property
    def unknown(self) -> int:
        """How many of the complete tokens of the last split text are <unk>."""
        return self.encoder.unknown

    def logits_for(self, ids: list[int], interrupt: Callable[[], bool] | None = None) -> Tensor:
        """Next-token logits after the start token followed by `ids`, reusing cached states."""
        self._synced = False
        return self.states.logits(ids, interrupt=interrupt)

    def state_for(self, ids: list[int]) -> tuple[State, Tensor]:
        logits = self.logits_for(ids)
        return self.states.state(len(ids)), logits

    def split(self, text: str) -> tuple[list[int], str]:
        """tokenizer.split_partial(text), incrementally: (complete ids (read-only), partial)."""
        if text != self.encoder.text:
            self._synced = False  # the encoder moves on without the state cache
        ids, partial, _ = self.encoder.split(text)
        return ids, partial

    def read(
        self, text: str, interrupt: Callable[[], bool] | None = None
    ) -> tuple[list[int], str, Tensor]:
        """(complete ids of `text`, the half-typed word, the next-token logits after the ids).

        While the state cache follows the encoder, the ids the encoder left unchanged are not
        compared again. `interrupt`: see ``StateCache.logits``."""
        ids, partial, stable = self.encoder.split(text)
        known = stable if self._synced else 0
        self._synced = False  # until the state cache has really moved to these ids
        logits = self.states.logits(ids, known=known, interrupt=interrupt)
        self._synced = True
        return ids, partial, logits

    def state(self, t: int) -> State:
        """The state after start + ids[:t]; t must be the position last asked for."""
        return self.states.state(t)

    def end(self) -> tuple[State, Tensor]:
        """(state, next-token logits) after the complete tokens of the text last read."""
        return self.states.state(len(self.encoder.ids)), self.states.last[1]

    def extend(self, token: int) -> Tensor:
        """Append one token to the cached sequence (generation): exactly one model step."""
        self._synced = False
        return self.states.extend(token)

    def snapshot(self) -> Snapshot:
        """The cached states as they are now (shared tensors, copied indexes: O(states))."""
        s = self.states
        return Snapshot(list(s.ids), dict(s.states), s.first, s.last, s.spacing, s.dense_lo)

    def restore(self, snap: Snapshot) -> bool:
        """Make `snap` the cached states again; False (nothing changed) if the cache was reset
        since it was taken (new weights: its states are stale)."""
        s = self.states
        if snap.first is not s.first:
            return False
        s.ids, s.states, s.last = list(snap.ids), dict(snap.states), snap.last
        s.spacing, s.dense_lo = snap.spacing, snap.dense_lo
        s.version += 1
        self._synced = False  # the encoder still holds the text read last
        return True


@dataclass(frozen=True)
class Snapshot:
    """A StateCache's contents at one moment (``PrefixCache.snapshot``)."""

    ids: list[int]
    states: dict[int, State]
    first: Tensor  # the reset it belongs to: reset() makes a new one
    last: tuple[int, Tensor] | None
    spacing: int
    dense_lo: int
